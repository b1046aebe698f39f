"""`PipelineConfig`, the settings of `run_pipeline` (what `ebrm demo` runs)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ebrm._config import (
    check_bool,
    check_choice,
    check_float,
    check_int,
    from_dict,
    invalid,
    to_dict,
)
from ebrm.energy.config import TrainConfig
from ebrm.energy.presets import DEFAULT_PRESET, PRESETS


@dataclass(frozen=True)
class PipelineConfig:
    """Settings of `run_pipeline`; the defaults are `ebrm demo`'s (MiniLM base RM, head-only)."""

    base_model: str | None = None  # HF encoder/LM to train the base RM from; None: MiniLM-L6
    seed: int = 0  # seeds the split, base-RM training and EBRM training
    test_fraction: float = 0.3  # share of the prompts held out for the final evaluation
    validation_fraction: float = 0.2  # share of the prompts choosing EBRM's checkpoint
    max_length: int = 256  # tokens per text, for base-RM training and extraction
    freeze_encoder: bool = True  # train only the base RM's score head (fast), not the encoder
    base_epochs: float | None = None  # base-RM passes over the train split; None: its default
    base_learning_rate: float | None = None  # base-RM AdamW learning rate; None: its default
    label_noise: float = 0.0  # share of base-RM training labels flipped (never val/test)
    preset: str = DEFAULT_PRESET  # EBRM training preset (`TrainConfig.preset`)
    train_overrides: dict[str, Any] | None = None  # TrainConfig fields replacing the preset's
    batch_size: int = 16  # texts per forward pass
    n_boot: int = 2000  # bootstrap replicates of the evaluation
    device: str | None = None  # torch device; None: CUDA if available
    progress: bool = True  # progress bars

    def __post_init__(self) -> None:
        if self.base_model is not None:
            object.__setattr__(self, "base_model", str(self.base_model))  # a Path is fine too
        check_int(self, "seed")
        for name in ("test_fraction", "validation_fraction"):
            check_float(self, name, low=0.0, high=1.0, low_open=True, high_open=True)
        if self.test_fraction + self.validation_fraction >= 1.0:
            raise invalid(
                self, "validation_fraction", f"< 1 - test_fraction ({1 - self.test_fraction:g})",
                self.validation_fraction, hint="Otherwise nothing is left to train on.",
            )  # fmt: skip
        check_int(self, "max_length", low=8)
        check_bool(self, "freeze_encoder")
        check_float(self, "base_epochs", low=0.0, low_open=True, optional=True)
        check_float(self, "base_learning_rate", low=0.0, low_open=True, optional=True)
        check_float(self, "label_noise", low=0.0, high=1.0)
        check_choice(self, "preset", PRESETS)
        if self.train_overrides is not None:
            object.__setattr__(self, "train_overrides", dict(self.train_overrides))
        check_int(self, "batch_size", low=1)
        check_int(self, "n_boot", low=1)
        check_bool(self, "progress")
        self.train_config()  # a bad override fails now, not after the base RM has trained

    def train_config(self) -> TrainConfig:
        """The EBRM `TrainConfig`: the preset, the overrides, this run's seed and device."""
        overrides = {"seed": self.seed, "device": self.device, **(self.train_overrides or {})}
        return TrainConfig.preset(self.preset, **overrides)

    def to_dict(self) -> dict:
        return to_dict(self)

    @classmethod
    def from_dict(cls, data: dict) -> PipelineConfig:
        """Inverse of `to_dict`; unknown keys are dropped with one warning naming them."""
        return from_dict(cls, data)
