"""Feature stores: (embedding, reward) rows of a preference data set, extracted once.

`extract_features` fills a store (resumable, multi-process with accelerate);
`load_features` / `FeatureStore.open(path).load()` read it back as `PairFeatures`;
`StoredRows` finds a store's rows by text, so that no text is embedded twice by the same RM
(`extract_features(..., reuse=...)`, `ReusingRM`).
"""

from ebrm.features.extract import extract_features
from ebrm.features.plan import ExtractionPlan, build_plan, plan_rows
from ebrm.features.reuse import ReusingRM, StoredRows
from ebrm.features.store import FeatureStore, load_features
from ebrm.features.table import PairFeatures

__all__ = [
    "ExtractionPlan",
    "FeatureStore",
    "PairFeatures",
    "ReusingRM",
    "StoredRows",
    "build_plan",
    "extract_features",
    "load_features",
    "plan_rows",
]
