"""A bootstrap ensemble of Bradley-Terry heads on the embeddings (the cheap cousin of RM
ensembles).

K linear BT heads, each the MAP (`bt_map.fit_bt_map`, one shared prior precision) on a
bootstrap resample of the training pairs (multiplicities drawn with a seeded generator).
Per response `x = e - c` (`c` the mean training embedding, as in `laplace`): the reward
mean and std over the K heads' rewards `w_k . x` (std with K - 1 in the denominator).
`P(a > b)` is the ensemble average of the members' `sigmoid(w_k . (e_a - e_b))`.

The prior precision is chosen on the validation pairs by the negative log-likelihood of one
MAP head on all training pairs (K times cheaper than scoring every ensemble), over the
same multiples of the data's Fisher scale as `laplace` (`prior.prior_path`, shared with it).
The K heads are fitted together (`bt_map.fit_bt_map_batch`: each pass over the pairs serves
all K), each with its bootstrap counts as pair weights (no resampled copies), from the
all-pairs MAP and preconditioned by the data Hessian there (a resample's Hessian is close).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ebrm.references import bt_map
from ebrm.references._pairs import as_pairs
from ebrm.references.laplace import MAX_FULL_DIM, chunked
from ebrm.references.prior import PriorPath, first_minimum, prior_path
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
        return chunked(lambda e: (e - self.center) @ self.weights.T, torch.as_tensor(embeddings))

    def predict(self, embeddings: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Reward mean and std over the heads per response, each (N,) float64."""
        rewards = self.member_rewards(embeddings)
        std = rewards.std(dim=1, unbiased=True) if self.size > 1 else torch.zeros(len(rewards))
        return rewards.mean(dim=1), std

    def p_better(
        self, emb_a: torch.Tensor, emb_b: torch.Tensor, *, calibrated: bool = True
    ) -> torch.Tensor:
        """P(y_a > y_b) (N,): the members' average, temperature-scaled if `calibrated`."""
        p = chunked(
            lambda a, b: torch.sigmoid((a - b) @ self.weights.T).mean(dim=1),
            torch.as_tensor(emb_a), torch.as_tensor(emb_b),
        )  # fmt: skip
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


def fit_ensemble(
    train_chosen,
    train_rejected=None,
    val_chosen=None,
    val_rejected=None,
    *,
    size: int = DEFAULT_SIZE,
    seed: int = 0,
    prior_precision: float | None = None,
    path: PriorPath | None = None,
) -> tuple[EnsembleReference, dict]:
    """Fit `size` BT heads on bootstrap resamples of the training pairs.

    Args:
        train_chosen, train_rejected: (P, D) embeddings of the training pairs, or
            `train_chosen` a `PairRows`.
        val_chosen, val_rejected: (V, D) validation pairs, or `val_chosen` a `PairRows`
            (choose the prior precision).
        size: K, the number of heads (>= 2 for a std).
        seed: seed of the resamples (`bootstrap_counts`).
        prior_precision: use this lambda instead of choosing one on validation.
        path: the candidates' MAP heads when already solved (shared with the Laplace fit).

    Returns:
        (reference, report).

    Raises:
        ValueError: size < 1.
    """
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValueError(f"The ensemble size must be an int >= 1. Got {size!r} instead.")
    tried: list[dict] = []
    if prior_precision is None:
        if path is None:
            pairs = as_pairs(train_chosen, train_rejected)
            val = None if val_chosen is None else as_pairs(val_chosen, val_rejected)
            path = prior_path(pairs, val)
        pairs, center, nll = path.pairs, path.stats.center, path.map_nll()
        j = first_minimum(nll)
        prior_precision, init = float(path.precisions[j]), path.weights[j]
        if path.has_validation:
            tried = [
                {"prior_multiple": mu, "val_nll": v}
                for mu, v in zip(path.multiples, nll, strict=True)
            ]
        # the Hessian at the all-pairs MAP (the Laplace fit's, when it chose the same)
        precond = path.hessian(j) if pairs.dim <= MAX_FULL_DIM else path.stats.preconditioner()
    else:
        pairs = as_pairs(train_chosen, train_rejected)
        stats = bt_map.pair_statistics(pairs)
        center, init, precond = stats.center, None, stats.preconditioner()
    counts = bootstrap_counts(len(pairs), size, seed)
    weights = bt_map.fit_bt_map_batch(
        pairs, [prior_precision] * size, counts=counts, init=init, preconditioner=precond
    )
    ref = EnsembleReference(weights, center.clone(), float(prior_precision), seed)
    return ref, {"prior_precision": float(prior_precision), "size": size, "tried": tried}
