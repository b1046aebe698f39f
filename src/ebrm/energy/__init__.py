"""The energy head and its training (DESIGN §1.2-1.5)."""

from ebrm.energy.config import EnergyHeadConfig
from ebrm.energy.filter import FilterReport, filter_conflicts
from ebrm.energy.head import EnergyHead
from ebrm.energy.losses import bradley_terry_loss, nce_plus_loss
from ebrm.energy.normalize import RewardNormalizer
from ebrm.energy.objectives import (
    NCEPlus,
    NCEPlusBT,
    NCEPlusMargin,
    Objective,
    ObjectiveOutput,
    PairBatch,
    make_objective,
)
from ebrm.energy.presets import PRESETS, TrainConfig
from ebrm.energy.train import TrainResult, train_energy_head

__all__ = [
    "PRESETS",
    "EnergyHead",
    "EnergyHeadConfig",
    "FilterReport",
    "NCEPlus",
    "NCEPlusBT",
    "NCEPlusMargin",
    "Objective",
    "ObjectiveOutput",
    "PairBatch",
    "RewardNormalizer",
    "TrainConfig",
    "TrainResult",
    "bradley_terry_loss",
    "filter_conflicts",
    "make_objective",
    "nce_plus_loss",
    "train_energy_head",
]
