"""Options of the over-optimisation harness (`ebrm overopt`)."""

from __future__ import annotations

from dataclasses import dataclass

from ebrm.errors import ConfigError


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
        if self.num_prompts < 1:
            raise ConfigError(f"num_prompts must be >= 1; got {self.num_prompts}.")
        if self.num_candidates < 2:
            raise ConfigError(f"num_candidates must be >= 2; got {self.num_candidates}.")
        if self.max_n is not None and not 1 <= self.max_n <= self.num_candidates:
            raise ConfigError(
                f"max_n must be in 1..num_candidates ({self.num_candidates}); got {self.max_n}."
            )
        if not 0.0 < self.proxy_fraction < 1.0:
            raise ConfigError(f"proxy_fraction must be in (0, 1); got {self.proxy_fraction}.")
        if not 0.0 <= self.label_noise <= 1.0:
            raise ConfigError(f"label_noise must be in [0, 1]; got {self.label_noise}.")
        if self.conservative_k < 0:
            raise ConfigError(f"conservative_k must be >= 0; got {self.conservative_k}.")
        if not self.head_epochs > 0:
            raise ConfigError(f"head_epochs must be > 0; got {self.head_epochs}.")
