"""Rewards as differentiable functions of embeddings.

Every reward the harness compares (gold, the base proxy, EBRM refined and conservative, the
references' means and conservative forms) is a `Scorer`: (M, D) embeddings -> (M,)
rewards, built from torch operations only, so the embedding-space policy (`ascent.py`) can
follow its gradient and the pools (`run.py`) can score their candidates with the same
function.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch

#: (M, D) embeddings -> (M,) rewards, differentiable in the embeddings
Scorer = Callable[[torch.Tensor], torch.Tensor]


class LinearScorer:
    """r(x) = x . w (a Bradley-Terry head's reward)."""

    def __init__(self, weight: torch.Tensor) -> None:
        self.weight = torch.as_tensor(weight).detach().reshape(-1)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.weight.to(x.dtype)


class ShiftedScorer:
    """r(x) = base(x) + c (changes no policy: a check that the harness is paired)."""

    def __init__(self, base: Scorer, shift: float) -> None:
        self.base, self.shift = base, shift

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + self.shift


def score_all(
    scorers: Mapping[str, Scorer], embeddings: torch.Tensor, *, chunk: int = 512
) -> dict[str, torch.Tensor]:
    """{name: (N,) float32 rewards} of (N, D) `embeddings`, without autograd, in chunks."""
    out = {}
    with torch.no_grad():
        for name, scorer in scorers.items():
            parts = [scorer(embeddings[i : i + chunk].float()).reshape(-1).float()
                     for i in range(0, embeddings.shape[0], chunk)]  # fmt: skip
            out[name] = torch.cat(parts) if parts else torch.zeros(0)
    return out
