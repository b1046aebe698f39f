"""Last-layer Laplace: a Gaussian posterior over a Bradley-Terry head on the embeddings.

The field's "Bayesian reward model" baseline, in closed form on stored features:

1. MAP `w*` of a linear BT head with prior `N(0, I / lambda)` (`bt_map`); the prior
   precision `lambda` is chosen on the validation pairs by the negative log-likelihood of
   the predictive probability below (`prior.choose_laplace`: one eigendecomposition serves
   every candidate).
2. Posterior `w ~ N(w*, S)`, `S = H(w*)^-1` with `H` the Hessian of the negative log
   posterior at the MAP. Up to `max_full_dim` dimensions `S` is the full inverse; beyond,
   the diagonal approximation `S = diag(1 / H_jj)` (the common "diagonal Laplace"; it
   ignores correlations between weights, so its stds are smaller than the full form's).
3. Per response `x = e - c` (`c` the mean training embedding, so the reward is relative
   to an average response: a BT head's offset is not identified by pairs):
   reward mean `w* . x`, std `sqrt(x^T S x)`.
4. `P(a > b)` by the probit approximation of the logistic-Gaussian integral (MacKay 1992):
   with `d = e_a - e_b`, `P = sigmoid(w* . d / sqrt(1 + pi/8 d^T S d))`; the covariance of
   the two rewards is included because both come from the same `w`.

Rewards are in the head's log-odds units (a difference of 1 is odds e : 1). Scoring goes
`SCORE_ROWS` responses at a time, so a large table never becomes three (N, D) float64 arrays.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ebrm.references._pairs import PairRows, as_pairs
from ebrm.references.prior import (
    DEFAULT_PRIOR_MULTIPLE,
    PRIOR_MULTIPLES,
    PriorPath,
    choose_laplace,
    pair_nll,
    prior_path,
    probit_probability,
)
from ebrm.refine.calibration import temperature_scale

MAX_FULL_DIM = 4096  # full covariance up to this many dimensions, diagonal beyond
SCORE_ROWS = 4096  # responses per chunk when scoring

__all__ = ["DEFAULT_PRIOR_MULTIPLE", "PRIOR_MULTIPLES", "LaplaceReference", "fit_laplace",
           "pair_nll", "probit_probability"]  # fmt: skip


def chunked(fn, *tensors: torch.Tensor, rows: int = SCORE_ROWS):
    """fn over row chunks of the tensors (as float64), results concatenated per output."""
    n = len(tensors[0])
    parts = [fn(*(t[i : i + rows].to(torch.float64) for t in tensors)) for i in range(0, n, rows)]
    if not parts:
        parts = [fn(*(t[:0].to(torch.float64) for t in tensors))]
    if isinstance(parts[0], tuple):
        return tuple(torch.cat(p) for p in zip(*parts, strict=True))
    return torch.cat(parts)


@dataclass(frozen=True)
class LaplaceReference:
    """A BT head's Gaussian posterior; all tensors float64 CPU."""

    weight: torch.Tensor  # (D,) the MAP w*
    center: torch.Tensor  # (D,) mean training embedding c
    covariance: torch.Tensor  # (D, D) full S, or (D,) its diagonal
    prior_precision: float  # lambda, chosen on validation
    temperature: float = 1.0  # P(a > b) temperature fitted on validation (1 = none)
    name = "laplace"

    @property
    def diagonal(self) -> bool:
        return self.covariance.ndim == 1

    def _quadratic(self, x: torch.Tensor) -> torch.Tensor:
        """x^T S x per row (N,)."""
        if self.diagonal:
            return x.square() @ self.covariance
        return ((x @ self.covariance) * x).sum(-1).clamp_min(0)

    def predict(self, embeddings: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Predictive reward mean and std per response, each (N,) float64."""

        def part(e):
            x = e - self.center
            return x @ self.weight, self._quadratic(x).sqrt()

        return chunked(part, torch.as_tensor(embeddings))

    def p_better(
        self, emb_a: torch.Tensor, emb_b: torch.Tensor, *, calibrated: bool = True
    ) -> torch.Tensor:
        """P(y_a > y_b) (N,) by the probit approximation, temperature-scaled if `calibrated`."""

        def part(a, b):
            d = a - b
            return probit_probability(d @ self.weight, self._quadratic(d))

        p = chunked(part, torch.as_tensor(emb_a), torch.as_tensor(emb_b))
        if calibrated and self.temperature != 1.0:
            p = temperature_scale(p, self.temperature)
        return p

    def tensors(self) -> dict[str, torch.Tensor]:
        return {"weight": self.weight, "center": self.center, "covariance": self.covariance}

    def meta(self) -> dict:
        return {
            "prior_precision": self.prior_precision,
            "temperature": self.temperature,
            "covariance": "diagonal" if self.diagonal else "full",
            "dim": int(self.weight.shape[0]),
        }

    @classmethod
    def from_parts(cls, tensors: dict[str, torch.Tensor], meta: dict) -> LaplaceReference:
        return cls(
            weight=tensors["weight"].to(torch.float64),
            center=tensors["center"].to(torch.float64),
            covariance=tensors["covariance"].to(torch.float64),
            prior_precision=float(meta["prior_precision"]),
            temperature=float(meta.get("temperature", 1.0)),
        )


def fit_laplace(
    train_chosen,
    train_rejected=None,
    val_chosen=None,
    val_rejected=None,
    *,
    prior_multiples: tuple[float, ...] = PRIOR_MULTIPLES,
    max_full_dim: int = MAX_FULL_DIM,
    path: PriorPath | None = None,
) -> tuple[LaplaceReference, dict]:
    """Fit the Laplace reference, the prior precision chosen on validation.

    Args:
        train_chosen, train_rejected: (P, D) embeddings of the training pairs, or
            `train_chosen` a `PairRows` (pairs by index into a possibly memory-mapped table).
        val_chosen, val_rejected: (V, D) embeddings of the validation pairs, or
            `val_chosen` a `PairRows` (optional).
        prior_multiples: prior precisions tried, in units of the data's Fisher scale.
        max_full_dim: dimensions up to which the covariance is full (else diagonal).
        path: the candidates' MAP heads when already solved (`prior.prior_path`, shared
            with the ensemble); its pairs and multiples are used.

    Returns:
        (reference, report) where report has the validation NLL of every precision tried
        ("exact": False where it was approximated; see `ebrm.references.prior`).
    """
    if path is None:
        pairs = as_pairs(train_chosen, train_rejected)
        val = None if val_chosen is None else as_pairs(val_chosen, val_rejected)
        path = prior_path(pairs, val, prior_multiples=prior_multiples)
    j, cov, tried = choose_laplace(path, max_full_dim=max_full_dim)
    ref = LaplaceReference(
        path.weights[j].clone(), path.stats.center, cov, float(path.precisions[j])
    )
    report = {
        "prior_multiple": path.multiples[j],
        "prior_precision": ref.prior_precision,
        "val_nll": tried[j]["val_nll"],
        "tried": tried,
    }
    return ref, report


def pairs_p_better(ref, pairs: PairRows) -> torch.Tensor:
    """`ref.p_better(chosen, rejected, calibrated=False)` over `pairs`, chunk by chunk."""
    parts = [ref.p_better(a, b, calibrated=False) for a, b in pairs.row_chunks()]
    return torch.cat(parts) if parts else torch.zeros(0, dtype=torch.float64)
