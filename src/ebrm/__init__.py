"""ebrm: energy-based refinement of frozen reward models (EBRM, arXiv 2504.13134).

The public API, imported lazily so that `import ebrm` stays cheap::

    from ebrm import BaseRewardModel, extract_features, train_energy_head, EnergyRewardModel
"""

from __future__ import annotations

import importlib

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


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'ebrm' has no attribute {name!r}")
