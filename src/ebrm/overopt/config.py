"""Options of the over-optimisation harness (`ebrm overopt`)."""

from __future__ import annotations

from dataclasses import dataclass

from ebrm._config import check_bool, check_float, check_int, from_dict, to_dict


@dataclass(frozen=True)
class OveroptConfig:
    """Options of `run_overopt`."""

    num_prompts: int = 200  # prompts in the candidate pool
    num_candidates: int = 32  # candidates per prompt (own chosen + rejected + others)
    max_n: int | None = None  # largest best-of-n (default: num_candidates)
    seed: int = 0  # seeds the split, label flips, pool draw and training
    proxy_fraction: float = 0.5  # share of pairs the proxy (and EBRM) train on
    label_noise: float = 0.25  # share of the proxy's training labels flipped
    conservative_k: float = 1.0  # conservative reward = mean - k * std
    max_length: int = 128  # tokens per text (left-truncated: the response is kept)
    gold_finetune: bool = False  # fine-tune the gold RM fully instead of a frozen encoder
    head_epochs: float = 20.0  # epochs of a frozen-encoder BT head (batch 16, AdamW 1e-3)
    head_weight_decay: float = 1e-3  # AdamW weight decay of the BT head
    batch_size: int = 32  # texts per forward pass
    device: str | None = None  # torch device; None: CUDA if available
    progress: bool = True  # progress bars

    def __post_init__(self) -> None:
        check_int(self, "num_prompts", low=1)
        check_int(self, "num_candidates", low=2)
        check_int(self, "max_n", low=1, high=self.num_candidates, optional=True)
        check_int(self, "seed")
        check_float(self, "proxy_fraction", low=0.0, high=1.0, low_open=True, high_open=True)
        check_float(self, "label_noise", low=0.0, high=1.0)
        check_float(self, "conservative_k", low=0.0)
        check_int(self, "max_length", low=8)
        check_bool(self, "gold_finetune")
        check_float(self, "head_epochs", low=0.0, low_open=True)
        check_float(self, "head_weight_decay", low=0.0)
        check_int(self, "batch_size", low=1)
        check_bool(self, "progress")

    def to_dict(self) -> dict:
        return to_dict(self)

    @classmethod
    def from_dict(cls, data: dict) -> OveroptConfig:
        """Inverse of `to_dict`; unknown keys are dropped with one warning naming them."""
        return from_dict(cls, data)
