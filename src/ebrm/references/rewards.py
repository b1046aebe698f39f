"""What every post-hoc reference reward offers: a mean, a std, P(a > b), a lower bound."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch

from ebrm.refine.uncertainty import std_lower_bound


class Reference(Protocol):
    """A reward with uncertainty fitted on the same features and labels as the energy head."""

    name: str
    temperature: float

    def predict(self, embeddings: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Reward mean and std (N,) of (N, D) embeddings."""
        ...

    def p_better(
        self, emb_a: torch.Tensor, emb_b: torch.Tensor, *, calibrated: bool = True
    ) -> torch.Tensor:
        """P(y_a > y_b) (N,)."""
        ...

    def tensors(self) -> dict[str, torch.Tensor]: ...

    def meta(self) -> dict: ...


@dataclass(frozen=True)
class ReferenceRewards:
    """Per-response rewards of one reference, each (N,) float32 CPU, in its log-odds units."""

    mean: torch.Tensor
    std: torch.Tensor
    lcb: torch.Tensor  # lower confidence bound mean - k * std, k as the head's `conservative_k`


def reference_rewards(ref: Reference, embeddings: torch.Tensor, *, k: float) -> ReferenceRewards:
    """Mean, std and `mean - k * std` of `ref` for (N, D) embeddings."""
    mean, std = ref.predict(torch.as_tensor(embeddings))
    return ReferenceRewards(
        mean=mean.float(), std=std.float(), lcb=std_lower_bound(mean, std, k).float()
    )
