"""ebrm: energy-based refinement of frozen reward models (EBRM, arXiv 2504.13134).

The public API, imported lazily so that `import ebrm` stays cheap::

    from ebrm import BaseRewardModel, extract_features, train_energy_head, EnergyRewardModel
"""

from __future__ import annotations

from ebrm._lazy import lazy_getattr
from ebrm._version import __version__

_EXPORTS = {
    "Conversation": "ebrm.data.types",
    "PreferencePair": "ebrm.data.types",
    "load_pairs": "ebrm.data",
    "load_rmbench": "ebrm.data",
    "BaseRewardModel": "ebrm.rm.adapter",
    "extract_features": "ebrm.features",
    "load_features": "ebrm.features",
    "PairFeatures": "ebrm.features.table",
    "EnergyHead": "ebrm.energy",
    "EnergyHeadConfig": "ebrm.energy",
    "RewardNormalizer": "ebrm.energy",
    "filter_conflicts": "ebrm.energy",
    "TrainConfig": "ebrm.energy",
    "train_energy_head": "ebrm.energy",
    "RefineConfig": "ebrm.refine",
    "RefinedRewards": "ebrm.refine",
    "EnergyRewardModel": "ebrm.model",
    "EbrmError": "ebrm.errors",
}

__all__ = ["__version__", *_EXPORTS]


__getattr__ = lazy_getattr(__name__, _EXPORTS)
