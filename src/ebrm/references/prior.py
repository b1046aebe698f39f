"""Choosing the prior precision of the BT heads on validation pairs, at the cost of one fit.

The candidates are multiples of the data's Fisher scale (`PRIOR_MULTIPLES`). Each needs the
MAP head at that precision; `prior_path` solves all of them at once (`fit_bt_map_batch`:
every pass over the pairs serves every candidate), exactly, so the ensemble's criterion
(the validation NLL of the MAP head's sigmoid) is the one it always was.

The Laplace criterion (the validation NLL of the probit predictive) also needs each
candidate's covariance `(A(w_j) + lambda_j I)^-1`, `A(w)` the data Hessian at the MAP: one
P x D^2 pass and a D^3 factorisation per candidate. Instead, one eigendecomposition of
`A(w_r)` at a reference candidate r serves every precision, `(A(w_r) + lambda_j I)^-1 =
Q diag(1 / (a + lambda_j)) Q^T`: exact for r itself, a close approximation for its
neighbours (whose MAPs, hence curvature weights, are near w_r). r starts at the ensemble's
choice; whenever another candidate scores best, its own Hessian is computed, the others
re-approximated around it, and the search repeats, so the chosen precision's NLL is always
exact and beats the (approximate) NLL of every other candidate. Typically one or two
Hessians instead of one per Newton step per candidate (~90 before). The report marks
which NLLs are exact. Beyond `max_full_dim` (diagonal covariance) every candidate's
diagonal comes from one cheap pass, so that criterion is exact.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from ebrm.references import bt_map
from ebrm.references._pairs import PairRows

#: prior precisions searched, as multiples of the data's Fisher scale (strongest first)
PRIOR_MULTIPLES = tuple(10.0**k for k in (0, -0.5, -1, -1.5, -2, -2.5, -3, -3.5, -4))
DEFAULT_PRIOR_MULTIPLE = 1e-2  # used when there are no validation pairs


def pair_nll(p_first_wins: torch.Tensor) -> float:
    """Mean -log P over pairs whose first item won (P clipped to [1e-12, 1])."""
    return float(-p_first_wins.clamp_min(1e-12).log().mean())


def probit_probability(mean_diff: torch.Tensor, var_diff: torch.Tensor) -> torch.Tensor:
    """sigmoid(m / sqrt(1 + pi v / 8)) ~ E[sigmoid(z)], z ~ N(m, v)."""
    return torch.sigmoid(mean_diff / torch.sqrt(1.0 + math.pi / 8.0 * var_diff))


def first_minimum(values: list[float]) -> int:
    """The index of the first smallest value (NaN never wins; all NaN: 0)."""
    best = 0
    for i, v in enumerate(values):
        if v < values[best] or (math.isnan(values[best]) and not math.isnan(v)):
            best = i
    return best


@dataclass
class PriorPath:
    """Every candidate precision's exact MAP head, and what the criteria need."""

    pairs: PairRows
    validation: PairRows | None
    stats: bt_map.PairStatistics
    multiples: tuple[float, ...]
    precisions: torch.Tensor  # (m,) lambda_j = multiple_j * Fisher scale
    weights: torch.Tensor  # (m, D) the MAP head at each
    val_margins: torch.Tensor | None  # (V, m) w_j . d on the validation pairs
    _hessians: dict = field(default_factory=dict)  # j -> Preconditioner of A(w_j)

    @property
    def has_validation(self) -> bool:
        return self.val_margins is not None

    def map_nll(self) -> list[float]:
        """Validation NLL of each MAP head's sigmoid (NaN without validation)."""
        if self.val_margins is None:
            return [float("nan")] * len(self.multiples)
        return [pair_nll(torch.sigmoid(m)) for m in self.val_margins.T]

    def hessian(self, j: int) -> bt_map.Preconditioner:
        """The eigendecomposed data Hessian at candidate j's MAP (computed once)."""
        if j not in self._hessians:
            self._hessians[j] = bt_map.Preconditioner(
                bt_map.data_hessian(self.pairs, self.weights[j])
            )
        return self._hessians[j]

    def val_variances(self, solver: bt_map.Preconditioner) -> torch.Tensor:
        """(V, m) d^T (A + lambda_j I)^-1 d of the validation pairs for A in `solver`."""
        return torch.cat(
            [
                solver.quadratic(d.to(torch.float64), self.precisions)
                for _, _, d in self.validation.chunks()
            ]
        )

    def laplace_nll(self, variances: torch.Tensor) -> list[float]:
        return [pair_nll(probit_probability(self.val_margins[:, j], variances[:, j]))
                for j in range(len(self.multiples))]  # fmt: skip


def prior_path(
    pairs: PairRows,
    validation: PairRows | None,
    *,
    prior_multiples: tuple[float, ...] = PRIOR_MULTIPLES,
) -> PriorPath:
    """MAP heads at every candidate precision (only the default one without validation)."""
    has_val = validation is not None and len(validation) > 0
    multiples = tuple(prior_multiples) if has_val else (DEFAULT_PRIOR_MULTIPLE,)
    stats = bt_map.pair_statistics(pairs)
    lams = torch.tensor(multiples, dtype=torch.float64) * stats.scale
    weights = bt_map.fit_bt_map_batch(pairs, lams, preconditioner=stats.preconditioner())
    margins = None
    if has_val:
        margins = torch.cat([d.to(torch.float64) @ weights.T for _, _, d in validation.chunks()])
    return PriorPath(
        pairs, validation if has_val else None, stats, multiples, lams, weights, margins
    )


def choose_laplace(path: PriorPath, *, max_full_dim: int) -> tuple[int, torch.Tensor, list[dict]]:
    """(candidate index, its covariance (D, D) or (D,), tried) by the Laplace criterion."""
    m = len(path.multiples)
    if path.pairs.dim > max_full_dim:  # diagonal covariances: every candidate's, one pass
        diagonals = bt_map.data_hessian(path.pairs, path.weights, diagonal=True)  # (m, D)
        covariances = 1.0 / (diagonals + path.precisions[:, None])
        if not path.has_validation:
            return (
                0,
                covariances[0],
                [{"prior_multiple": path.multiples[0], "val_nll": float("nan")}],
            )
        variances = torch.cat(
            [d.to(torch.float64).square() @ covariances.T for _, _, d in path.validation.chunks()]
        )
        nll = path.laplace_nll(variances)
        tried = [
            {"prior_multiple": path.multiples[j], "val_nll": nll[j], "exact": True}
            for j in range(m)
        ]
        j = first_minimum(nll)
        return j, covariances[j], tried
    if not path.has_validation:
        chosen, nll, exact = 0, [float("nan")], {0}
    else:
        exact: set[int] = set()
        nll = [float("nan")] * m
        reference = first_minimum(path.map_nll())
        for _ in range(m):
            approx = path.laplace_nll(path.val_variances(path.hessian(reference)))
            nll[reference] = approx[reference]  # exact: A is this candidate's own Hessian
            exact.add(reference)
            nll = [nll[j] if j in exact else approx[j] for j in range(m)]
            chosen = first_minimum(nll)
            if chosen in exact:
                break
            reference = chosen
    solver = path.hessian(chosen)
    inv = 1.0 / (solver.values + path.precisions[chosen])
    cov = (solver.vectors * inv) @ solver.vectors.T
    tried = [{"prior_multiple": path.multiples[j], "val_nll": nll[j], "exact": j in exact}
             for j in range(m)]  # fmt: skip
    return chosen, (cov + cov.T) / 2, tried
