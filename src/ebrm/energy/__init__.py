"""The energy head and its training (DESIGN §1.2-1.5)."""

from __future__ import annotations

from ebrm._lazy import lazy_getattr

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


__getattr__ = lazy_getattr(__name__, _EXPORTS)
