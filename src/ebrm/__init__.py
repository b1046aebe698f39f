"""ebrm: energy-based refinement of frozen reward models (EBRM, arXiv 2504.13134).

The public API, imported lazily so that `import ebrm` stays cheap::

    from ebrm import BaseRewardModel, extract_features, train_energy_head, EnergyRewardModel
"""

from __future__ import annotations

from ebrm._lazy import lazy_getattr
from ebrm._version import __version__

# name -> the module that defines it (imported on first use; the API reference reads it)
_EXPORTS = {
    "Conversation": "ebrm.data.types",
    "PreferencePair": "ebrm.data.types",
    "load_pairs": "ebrm.data.pairs",
    "load_rmbench": "ebrm.data.pairs",
    "BaseRewardModel": "ebrm.rm.adapter",
    "extract_features": "ebrm.features.extract",
    "load_features": "ebrm.features.store",
    "PairFeatures": "ebrm.features.table",
    "EnergyHead": "ebrm.energy.head",
    "EnergyHeadConfig": "ebrm.energy.config",
    "RewardNormalizer": "ebrm.energy.normalize",
    "filter_conflicts": "ebrm.energy.filter",
    "TrainConfig": "ebrm.energy.config",
    "train_energy_head": "ebrm.energy.train",
    "RefineConfig": "ebrm.refine.config",
    "RefinedRewards": "ebrm.refine.results",
    "EnergyRewardModel": "ebrm.model.refined",
    "EbrmError": "ebrm.errors",
}

__all__ = ["__version__", *_EXPORTS]


__getattr__ = lazy_getattr(__name__, _EXPORTS)
