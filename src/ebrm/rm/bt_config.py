"""`BTTrainConfig`, the options of `ebrm base-rm train` (`ebrm.rm.train_bt`), without torch.

Kept apart from the trainer so that the command's options take their defaults from it
before torch loads.
"""

from __future__ import annotations

from dataclasses import dataclass

from ebrm._config import check_bool, check_float, check_int, from_dict, to_dict


@dataclass(frozen=True)
class BTTrainConfig:
    """Options of `train_bradley_terry`."""

    freeze_encoder: bool = False  # train only the score head, on precomputed features
    label_noise: float = 0.0  # fraction of training pairs whose chosen/rejected are swapped
    seed: int = 0  # seeds the head init, split, label flips and data order
    epochs: float | None = None  # passes over the training pairs; None: 1 full, 20 head-only
    learning_rate: float | None = None  # AdamW lr; None: 5e-5 full, 1e-3 head-only
    weight_decay: float = 0.0  # AdamW weight decay
    batch_size: int = 16  # pairs per optimiser step (and texts per forward when embedding)
    max_length: int = 512  # tokens per text; longer texts lose their start
    validation_fraction: float = 0.1  # held-out pairs (grouped by prompt), labels never flipped
    device: str | None = None  # torch device; None: CUDA if available
    progress: bool = True  # show progress bars

    def __post_init__(self) -> None:
        check_bool(self, "freeze_encoder")
        check_float(self, "label_noise", low=0.0, high=1.0)
        check_int(self, "seed")
        check_float(self, "epochs", low=0.0, low_open=True, optional=True)
        check_float(self, "learning_rate", low=0.0, low_open=True, optional=True)
        check_float(self, "weight_decay", low=0.0)
        check_int(self, "batch_size", low=1)
        check_int(self, "max_length", low=8)
        check_float(self, "validation_fraction", low=0.0, high=1.0, high_open=True)
        check_bool(self, "progress")

    def to_dict(self) -> dict:
        return to_dict(self)

    @classmethod
    def from_dict(cls, data: dict) -> BTTrainConfig:
        """Inverse of `to_dict`; unknown keys are dropped with one warning naming them."""
        return from_dict(cls, data)

    @property
    def resolved_epochs(self) -> float:
        return self.epochs if self.epochs is not None else (20 if self.freeze_encoder else 1)

    @property
    def resolved_learning_rate(self) -> float:
        if self.learning_rate is not None:
            return self.learning_rate
        return 1e-3 if self.freeze_encoder else 5e-5
