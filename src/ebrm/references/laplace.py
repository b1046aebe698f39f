"""Last-layer Laplace: a Gaussian posterior over a Bradley-Terry head on the embeddings.

The field's "Bayesian reward model" baseline, in closed form on stored features:

1. MAP `w*` of a linear BT head with prior `N(0, I / lambda)` (`bt_map.fit_bt_map`); the
   prior precision `lambda` is chosen on the validation pairs by the negative
   log-likelihood of the predictive probability below.
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

Rewards are in the head's log-odds units (a difference of 1 is odds e : 1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ebrm.references import bt_map
from ebrm.refine.calibration import temperature_scale

#: prior precisions searched, as multiples of `bt_map.data_precision_scale`; strongest first,
#: so each fit starts from the previous (nearby) optimum
PRIOR_MULTIPLES = tuple(10.0**k for k in (0, -0.5, -1, -1.5, -2, -2.5, -3, -3.5, -4))
DEFAULT_PRIOR_MULTIPLE = 1e-2  # used when there are no validation pairs
MAX_FULL_DIM = 4096  # full covariance up to this many dimensions, diagonal beyond


def probit_probability(mean_diff: torch.Tensor, var_diff: torch.Tensor) -> torch.Tensor:
    """sigmoid(m / sqrt(1 + pi v / 8)) ~ E[sigmoid(z)], z ~ N(m, v)."""
    return torch.sigmoid(mean_diff / torch.sqrt(1.0 + math.pi / 8.0 * var_diff))


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
        x = embeddings.to(torch.float64) - self.center
        return x @ self.weight, self._quadratic(x).sqrt()

    def p_better(
        self, emb_a: torch.Tensor, emb_b: torch.Tensor, *, calibrated: bool = True
    ) -> torch.Tensor:
        """P(y_a > y_b) (N,) by the probit approximation, temperature-scaled if `calibrated`."""
        d = emb_a.to(torch.float64) - emb_b.to(torch.float64)
        p = probit_probability(d @ self.weight, self._quadratic(d))
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


def posterior(
    diff: torch.Tensor,
    center: torch.Tensor,
    prior_precision: float,
    *,
    max_full_dim: int,
    init: torch.Tensor | None = None,
) -> LaplaceReference:
    """MAP and Laplace covariance at one prior precision (no temperature)."""
    w = bt_map.fit_bt_map(diff, prior_precision=prior_precision, init=init)
    if diff.shape[1] <= max_full_dim:
        h = bt_map.hessian(w, diff.to(torch.float64), prior_precision)
        chol = torch.linalg.cholesky(h)  # H is positive definite (lambda > 0)
        cov = torch.cholesky_inverse(chol)
        cov = (cov + cov.T) / 2
    else:
        cov = 1.0 / bt_map.hessian_diagonal(w, diff.to(torch.float64), prior_precision)
    return LaplaceReference(w, center, cov, float(prior_precision))


def pair_nll(p_first_wins: torch.Tensor) -> float:
    """Mean -log P over pairs whose first item won (P clipped to [1e-12, 1])."""
    return float(-p_first_wins.clamp_min(1e-12).log().mean())


def fit_laplace(
    train_chosen: torch.Tensor,
    train_rejected: torch.Tensor,
    val_chosen: torch.Tensor | None = None,
    val_rejected: torch.Tensor | None = None,
    *,
    prior_multiples: tuple[float, ...] = PRIOR_MULTIPLES,
    max_full_dim: int = MAX_FULL_DIM,
) -> tuple[LaplaceReference, dict]:
    """Fit the Laplace reference, the prior precision chosen on validation.

    Args:
        train_chosen, train_rejected: (P, D) embeddings of the training pairs.
        val_chosen, val_rejected: (V, D) embeddings of the validation pairs (optional).
        prior_multiples: prior precisions tried, in units of the data's Fisher scale.
        max_full_dim: dimensions up to which the covariance is full (else diagonal).

    Returns:
        (reference, report) where report has the validation NLL of every precision tried.
    """
    train_chosen, train_rejected = train_chosen.to(torch.float64), train_rejected.to(torch.float64)
    diff = train_chosen - train_rejected  # (P, D)
    center = torch.cat([train_chosen, train_rejected]).mean(0)
    scale = bt_map.data_precision_scale(diff)
    has_val = val_chosen is not None and val_rejected is not None and len(val_chosen) > 0
    multiples = prior_multiples if has_val else (DEFAULT_PRIOR_MULTIPLE,)
    best, tried, init = None, [], None
    for multiple in multiples:
        ref = posterior(diff, center, multiple * scale, max_full_dim=max_full_dim, init=init)
        init = ref.weight
        nll = pair_nll(ref.p_better(val_chosen, val_rejected)) if has_val else float("nan")
        tried.append({"prior_multiple": multiple, "val_nll": nll})
        if best is None or nll < best[0]:
            best = (nll, ref, multiple)
    report = {
        "prior_multiple": best[2],
        "prior_precision": best[1].prior_precision,
        "val_nll": best[0],
        "tried": tried,
    }
    return best[1], report
