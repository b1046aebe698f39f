"""Feature stores: (embedding, reward) rows of a preference data set, extracted once.

`extract_features` fills a store (resumable, multi-process with accelerate);
`load_features` / `FeatureStore.open(path).load()` read it back as `PairFeatures`;
`StoredRows` finds a store's rows by text, so that no text is embedded twice by the same RM
(`extract_features(..., reuse=...)`, `ReusingRM`).
"""

from __future__ import annotations

from ebrm._lazy import lazy_getattr

# name -> module, imported on first use: the CLI reads this package's names and
# defaults (ebrm.cli) without importing torch
_EXPORTS = {
    "ExtractionPlan": "ebrm.features.plan",
    "FeatureStore": "ebrm.features.store",
    "PairFeatures": "ebrm.features.table",
    "ReusingRM": "ebrm.features.reuse",
    "StoredRows": "ebrm.features.reuse",
    "build_plan": "ebrm.features.plan",
    "extract_features": "ebrm.features.extract",
    "load_features": "ebrm.features.store",
    "plan_rows": "ebrm.features.plan",
}
__all__ = sorted(_EXPORTS)


__getattr__ = lazy_getattr(__name__, _EXPORTS)
