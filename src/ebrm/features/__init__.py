"""Feature stores: (embedding, reward) rows of a preference data set, extracted once.

`extract_features` fills a store (resumable, multi-process with accelerate);
`load_features` / `FeatureStore.open(path).load()` read it back as `PairFeatures`;
`StoredRows` finds a store's rows by text, so that no text is embedded twice by the same RM
(`extract_features(..., reuse=...)`, `ReusingRM`).
"""

from __future__ import annotations

import importlib
from typing import Any

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


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'ebrm.features' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
