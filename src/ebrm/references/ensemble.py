"""A bootstrap ensemble of Bradley-Terry heads on the embeddings (the cheap cousin of RM
ensembles).

K linear BT heads, each the MAP (`bt_map.fit_bt_map`, one shared prior precision) on a
bootstrap resample of the training pairs (multiplicities drawn with a seeded generator).
Per response `x = e - c` (`c` the mean training embedding, as in `laplace`): the reward
mean and std over the K heads' rewards `w_k . x` (std with K - 1 in the denominator).
`P(a > b)` is the ensemble average of the members' `sigmoid(w_k . (e_a - e_b))`.

The prior precision is chosen on the validation pairs by the negative log-likelihood of one
MAP head on all training pairs (K times cheaper than scoring every ensemble), over the
same multiples of the data's Fisher scale as `laplace`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ebrm.references import bt_map
from ebrm.references.laplace import DEFAULT_PRIOR_MULTIPLE, PRIOR_MULTIPLES, pair_nll
from ebrm.refine.calibration import temperature_scale

DEFAULT_SIZE = 5


@dataclass(frozen=True)
class EnsembleReference:
    """K BT heads; all tensors float64 CPU."""

    weights: torch.Tensor  # (K, D) one MAP head per bootstrap resample
    center: torch.Tensor  # (D,) mean training embedding c
    prior_precision: float  # lambda, chosen on validation
    seed: int = 0  # seed of the bootstrap resamples
    temperature: float = 1.0  # P(a > b) temperature fitted on validation (1 = none)
    name = "ensemble"

    @property
    def size(self) -> int:
        return int(self.weights.shape[0])

    def member_rewards(self, embeddings: torch.Tensor) -> torch.Tensor:
        """Every head's reward (N, K) float64."""
        return (embeddings.to(torch.float64) - self.center) @ self.weights.T

    def predict(self, embeddings: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Reward mean and std over the heads per response, each (N,) float64."""
        rewards = self.member_rewards(embeddings)
        std = rewards.std(dim=1, unbiased=True) if self.size > 1 else torch.zeros(len(rewards))
        return rewards.mean(dim=1), std

    def p_better(
        self, emb_a: torch.Tensor, emb_b: torch.Tensor, *, calibrated: bool = True
    ) -> torch.Tensor:
        """P(y_a > y_b) (N,): the members' average, temperature-scaled if `calibrated`."""
        d = emb_a.to(torch.float64) - emb_b.to(torch.float64)
        p = torch.sigmoid(d @ self.weights.T).mean(dim=1)
        if calibrated and self.temperature != 1.0:
            p = temperature_scale(p, self.temperature)
        return p

    def tensors(self) -> dict[str, torch.Tensor]:
        return {"weights": self.weights, "center": self.center}

    def meta(self) -> dict:
        return {
            "prior_precision": self.prior_precision,
            "seed": self.seed,
            "size": self.size,
            "temperature": self.temperature,
            "dim": int(self.weights.shape[1]),
        }

    @classmethod
    def from_parts(cls, tensors: dict[str, torch.Tensor], meta: dict) -> EnsembleReference:
        return cls(
            weights=tensors["weights"].to(torch.float64),
            center=tensors["center"].to(torch.float64),
            prior_precision=float(meta["prior_precision"]),
            seed=int(meta.get("seed", 0)),
            temperature=float(meta.get("temperature", 1.0)),
        )


def bootstrap_counts(num_pairs: int, size: int, seed: int) -> torch.Tensor:
    """(size, num_pairs) multiplicities of `size` bootstrap resamples, deterministic in seed."""
    generator = torch.Generator().manual_seed(seed)
    draws = torch.randint(0, num_pairs, (size, num_pairs), generator=generator)
    return torch.stack([torch.bincount(row, minlength=num_pairs) for row in draws])


def choose_prior_precision(
    diff: torch.Tensor,
    val_diff: torch.Tensor | None,
    *,
    prior_multiples: tuple[float, ...] = PRIOR_MULTIPLES,
) -> tuple[float, torch.Tensor, list[dict]]:
    """The prior precision whose all-pairs MAP head has the lowest validation NLL.

    Returns:
        (prior precision, that MAP head (D,), [{"prior_multiple", "val_nll"}, ...]).
    """
    scale = bt_map.data_precision_scale(diff)
    if val_diff is None or len(val_diff) == 0:
        lam = DEFAULT_PRIOR_MULTIPLE * scale
        return lam, bt_map.fit_bt_map(diff, prior_precision=lam), []
    tried, best, w = [], None, None
    for multiple in prior_multiples:
        w = bt_map.fit_bt_map(diff, prior_precision=multiple * scale, init=w)
        nll = pair_nll(torch.sigmoid(val_diff.to(torch.float64) @ w))
        tried.append({"prior_multiple": multiple, "val_nll": nll})
        if best is None or nll < best[0]:
            best = (nll, multiple * scale, w)
    return best[1], best[2], tried


def fit_ensemble(
    train_chosen: torch.Tensor,
    train_rejected: torch.Tensor,
    val_chosen: torch.Tensor | None = None,
    val_rejected: torch.Tensor | None = None,
    *,
    size: int = DEFAULT_SIZE,
    seed: int = 0,
    prior_precision: float | None = None,
) -> tuple[EnsembleReference, dict]:
    """Fit `size` BT heads on bootstrap resamples of the training pairs.

    Args:
        train_chosen, train_rejected: (P, D) embeddings of the training pairs.
        val_chosen, val_rejected: (V, D) validation pairs (choose the prior precision).
        size: K, the number of heads (>= 2 for a std).
        seed: seed of the resamples.
        prior_precision: use this lambda instead of choosing one on validation.

    Returns:
        (reference, report).

    Raises:
        ValueError: size < 1.
    """
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValueError(f"The ensemble size must be an int >= 1. Got {size!r} instead.")
    train_chosen, train_rejected = train_chosen.to(torch.float64), train_rejected.to(torch.float64)
    diff = train_chosen - train_rejected
    tried: list[dict] = []
    init = None
    if prior_precision is None:
        val_diff = None if val_chosen is None else val_chosen - val_rejected
        prior_precision, init, tried = choose_prior_precision(diff, val_diff)
    counts = bootstrap_counts(diff.shape[0], size, seed)
    weights = torch.stack(
        [
            bt_map.fit_bt_map(diff, prior_precision=prior_precision, counts=c, init=init)
            for c in counts
        ]
    )
    center = torch.cat([train_chosen, train_rejected]).mean(0)
    ref = EnsembleReference(weights, center, float(prior_precision), seed)
    return ref, {"prior_precision": float(prior_precision), "size": size, "tried": tried}
