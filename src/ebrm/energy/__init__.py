"""The energy head and its training (DESIGN §1.2-1.5)."""

from __future__ import annotations

import importlib
from typing import Any

# name -> module, imported on first use: the CLI reads this package's names and
# defaults (ebrm.cli) without importing torch
_EXPORTS = {
    "PRESETS": "ebrm.energy.presets",
    "EnergyHead": "ebrm.energy.head",
    "EnergyHeadConfig": "ebrm.energy.config",
    "FilterReport": "ebrm.energy.filter",
    "NCEPlus": "ebrm.energy.objectives",
    "NCEPlusBT": "ebrm.energy.objectives",
    "NCEPlusMargin": "ebrm.energy.objectives",
    "Objective": "ebrm.energy.objectives",
    "ObjectiveOutput": "ebrm.energy.objectives",
    "PairBatch": "ebrm.energy.objectives",
    "RewardNormalizer": "ebrm.energy.normalize",
    "TrainConfig": "ebrm.energy.config",
    "TrainResult": "ebrm.energy.train",
    "bradley_terry_loss": "ebrm.energy.losses",
    "filter_conflicts": "ebrm.energy.filter",
    "make_objective": "ebrm.energy.objectives",
    "nce_plus_loss": "ebrm.energy.losses",
    "train_energy_head": "ebrm.energy.train",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'ebrm.energy' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
