"""The energy head's two configs: its architecture (`EnergyHeadConfig`) and its training
(`TrainConfig`, whose named presets are `ebrm.energy.presets.PRESETS`)."""

from __future__ import annotations

from dataclasses import dataclass, replace

from ebrm._config import (
    check_bool,
    check_choice,
    check_float,
    check_int,
    check_widths,
    from_dict,
    invalid,
    to_dict,
)
from ebrm.energy.names import OBJECTIVES, PresetName


@dataclass(frozen=True)
class EnergyHeadConfig:
    """Architecture of `EnergyHead` (DESIGN §1.4); the paper's widths are the defaults."""

    embedding_dim: int  # width D of the base RM's embedding
    reward_widths: tuple[int, ...] = (16, 32, 64)  # reward branch y -> 16 -> 32 -> 64
    joint_widths: tuple[int, ...] = (1024, 512)  # joint MLP on [e; h(y)] -> 1024 -> 512 -> 1
    dropout: float = 0.5  # after the first two reward layers and every joint hidden layer

    def __post_init__(self) -> None:
        check_int(self, "embedding_dim", low=1)
        for name in ("reward_widths", "joint_widths"):
            check_widths(self, name)
            object.__setattr__(self, name, tuple(getattr(self, name)))
        check_float(self, "dropout", low=0.0, high=1.0, high_open=True)

    def to_dict(self) -> dict:
        return to_dict(self)

    @classmethod
    def from_dict(cls, data: dict) -> EnergyHeadConfig:
        """Inverse of `to_dict`; unknown keys are dropped with one warning naming them."""
        return from_dict(cls, data)


PAPER_HEAD = EnergyHeadConfig(embedding_dim=1)  # the paper's architecture (DESIGN §1.4)
_REFERENCE_SCALE = 4.0  # noise_std is given at this reward scale and scaled with it


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a training run (seeded: same config + data = same head)."""

    objective: str = "nce+"  # nce+ (paper) | nce+bt | nce+margin (preference-aware)
    reward_scale: float = 4.0  # s in y = s * (r - mean) / std
    noise_std: float = 3.5  # sigma of the negatives at reward_scale 4 (scaled with s)
    positive_noise_ratio: float = 0.1  # beta: the positive is y + N(0, (beta*sigma)^2)
    num_negatives: int = 128  # M negatives per record
    reg_weight: float = 0.05  # lambda_reg on mean(f^2)
    bt_weight: float = 1.0  # weight of the Bradley-Terry term (objective nce+bt)
    margin: float = 2.0  # chosen/rejected target separation, normalised units (nce+margin)
    train_grid_size: int = 64  # grid points of the differentiable posterior mean (nce+bt)
    learning_rate: float = 2e-3  # AdamW
    weight_decay: float = 1e-2  # AdamW
    batch_size: int = 64  # records (responses) per step; pairs per step = batch_size // 2
    max_steps: int | None = 2000  # optimiser-step budget; None = use `epochs`
    epochs: float | None = None  # budget in passes over the kept pairs (when max_steps is None)
    eval_every: int | None = 50  # steps between validation evals; None = once per epoch
    min_steps: int = 600  # no early stop before this many steps
    patience: int | None = None  # evals without improvement before stopping; None = never
    validation_fraction: float = 0.1  # pairs held out to select the checkpoint
    filter_conflicts: bool = True  # keep only pairs with r(chosen) > r(rejected)
    reward_widths: tuple[int, ...] = PAPER_HEAD.reward_widths  # energy head reward branch
    joint_widths: tuple[int, ...] = (128, 64)  # energy head joint MLP
    dropout: float = 0.0  # energy head dropout (training only)
    seed: int = 0  # seeds the split, the init, the negatives and dropout
    device: str | None = None  # torch device; None = cuda if available else cpu

    def __post_init__(self) -> None:
        check_choice(self, "objective", OBJECTIVES)
        for name, low in (("num_negatives", 1), ("batch_size", 2), ("train_grid_size", 3)):
            check_int(self, name, low=low)
        check_int(self, "min_steps", low=0)
        for name in ("max_steps", "eval_every", "patience"):
            check_int(self, name, low=1, optional=True)
        for name in ("reward_scale", "noise_std", "learning_rate"):
            check_float(self, name, low=0.0, low_open=True)
        for name in ("positive_noise_ratio", "reg_weight", "bt_weight", "margin", "weight_decay"):
            check_float(self, name, low=0.0)
        if self.max_steps is None and self.epochs is None:
            raise invalid(
                self, "max_steps", "an int >= 1 when 'epochs' is None", None,
                hint="Set a budget: 'max_steps' (optimiser steps) or 'epochs' (passes).",
            )  # fmt: skip
        check_float(self, "epochs", low=0.0, low_open=True, optional=True)
        check_float(self, "validation_fraction", low=0.0, high=1.0, high_open=True)
        check_float(self, "dropout", low=0.0, high=1.0, high_open=True)
        check_bool(self, "filter_conflicts")
        for name in ("reward_widths", "joint_widths"):
            check_widths(self, name)
            object.__setattr__(self, name, tuple(getattr(self, name)))

    @property
    def effective_noise_std(self) -> float:
        """sigma in the units of the normalised rewards (noise_std scaled with s)."""
        return self.noise_std * self.reward_scale / _REFERENCE_SCALE

    def to_dict(self) -> dict:
        return to_dict(self)

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        """Inverse of `to_dict`; unknown keys are dropped with one warning naming them."""
        return from_dict(cls, data)

    @classmethod
    def preset(cls, name: PresetName | str, **overrides) -> TrainConfig:
        """A named preset (`paper`, `small-data` or `large-data`) with some fields replaced.

        Raises:
            ConfigError: unknown preset name or invalid override.
        """
        from ebrm.energy.presets import PRESETS  # the presets are instances of this class

        if name not in PRESETS:
            raise invalid("TrainConfig.preset", "name", f"one of {', '.join(PRESETS)}", name)
        return replace(PRESETS[name], **overrides)
