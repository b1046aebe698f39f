"""The maximum-a-posteriori Bradley-Terry head on fixed embeddings, and its Hessian.

A linear reward `r(e) = w . e` with a Gaussian prior `w ~ N(0, I / lambda)` and the
Bradley-Terry likelihood `P(chosen > rejected) = sigmoid(w . d)`, `d = e_chosen - e_rejected`,
has the negative log posterior (up to a constant)

    U(w) = sum_i c_i softplus(-w . d_i) + lambda / 2 ||w||^2

with `c_i` a per-pair count (1, or the multiplicity of a bootstrap resample). `U` is
strictly convex, so Newton's method with a backtracking line search reaches the MAP
exactly; weight decay of the usual loop is this prior. Its Hessian is the Laplace
posterior's precision:

    H(w) = sum_i c_i s_i (1 - s_i) d_i d_i^T + lambda I,    s_i = sigmoid(w . d_i).

How it scales. Every quantity is a sum over pairs, accumulated in float64 over chunks of
`PairRows` (never the (P, D) difference matrix). Forming `H` costs P x D^2 per Newton step,
so `fit_bt_map_batch` does not: each Newton step solves `H p = grad` by conjugate gradients
with exact Hessian-vector products (P x D each) and one fixed preconditioner, the
eigendecomposition of a nearby data Hessian (`Preconditioner`), which makes a few CG
iterations enough. It solves m problems at once (one prior precision and one count vector
per column): every pass over the pairs serves all of them, so the whole prior-precision
path, or every bootstrap member, costs the passes of one fit. The optimum is U's, not the
preconditioner's: the gradient is exact (float64), only the search direction is approximate.

Not a copy of `ebrm.rm.bt_head.fit_bt_head`: that is the minibatch AdamW loop of
`ebrm base-rm train --freeze-encoder` (an epoch budget, not an optimum); a Laplace posterior
needs the exact mode, which is this module, used by both references.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch.nn.functional import softplus

from ebrm.references._pairs import PairRows, as_pairs

NEWTON_MAX_DIM = 8192  # eigendecomposed preconditioner up to this dimension, diagonal beyond
_STEPS = 0.5 ** torch.arange(35, dtype=torch.float64)  # backtracking t = 1, 1/2, ... < 1e-10


@dataclass(frozen=True)
class PairStatistics:
    """What one pass at w = 0 gives: the centre and the Fisher information."""

    center: torch.Tensor  # (D,) mean chosen-and-rejected embedding
    fisher_diagonal: torch.Tensor  # (D,) diag(sum d d^T / 4), float64 sums of float64 squares
    fisher: torch.Tensor | None  # (D, D) sum d d^T / 4 from float32 products (it preconditions)

    @property
    def scale(self) -> float:
        """The Fisher's average eigenvalue tr / D: prior precisions are multiples of it, so
        the search does not depend on the units of the embeddings."""
        return max(float(self.fisher_diagonal.sum()) / self.fisher_diagonal.shape[0], 1e-12)

    def preconditioner(self) -> Preconditioner:
        return Preconditioner(self.fisher_diagonal if self.fisher is None else self.fisher)


def pair_statistics(pairs: PairRows, *, full: bool | None = None) -> PairStatistics:
    """Centre and Fisher at w = 0 in one pass (the D x D matrix when `full`, default up to
    NEWTON_MAX_DIM)."""
    full = pairs.dim <= NEWTON_MAX_DIM if full is None else full
    diagonal = torch.zeros(pairs.dim, dtype=torch.float64)
    fisher = torch.zeros(pairs.dim, pairs.dim, dtype=torch.float64) if full else None
    for _, _, d in pairs.chunks():
        diagonal += d.to(torch.float64).square().sum(0)
        if fisher is not None:
            d = d.to(torch.float32)
            fisher += (d.T @ d).to(torch.float64)
    center = pairs.center() if pairs.rejected is not None else torch.zeros(pairs.dim)
    return PairStatistics(
        center.to(torch.float64), diagonal / 4.0, None if fisher is None else fisher / 4.0
    )


def data_precision_scale(diff) -> float:
    """The average eigenvalue of the Fisher information at w = 0: tr(sum d d^T / 4) / D."""
    return pair_statistics(as_pairs(diff), full=False).scale


class Preconditioner:
    """(A + lambda I)^-1 for a fixed symmetric data Hessian A and any lambda, by one
    eigendecomposition (or A's diagonal beyond NEWTON_MAX_DIM)."""

    def __init__(self, data_hessian: torch.Tensor):
        if data_hessian.ndim == 1:
            self.values, self.vectors = data_hessian.clamp_min(0), None
        else:
            values, self.vectors = torch.linalg.eigh(data_hessian)
            self.values = values.clamp_min(0)  # PSD up to rounding

    def solve(self, r: torch.Tensor, lams: torch.Tensor) -> torch.Tensor:
        """(A + lams_j I)^-1 r_j for every row j of r (m, D)."""
        inv = 1.0 / (self.values[None, :] + lams[:, None])  # (m, D)
        if self.vectors is None:
            return r * inv
        return ((r @ self.vectors) * inv) @ self.vectors.T

    def quadratic(self, x: torch.Tensor, lams: torch.Tensor) -> torch.Tensor:
        """x_i^T (A + lams_j I)^-1 x_i for rows x (N, D): (N, m)."""
        z = x.square() if self.vectors is None else (x @ self.vectors).square()
        return z @ (1.0 / (self.values[:, None] + lams[None, :]))


def _counts_of(counts: torch.Tensor | None, start: int, stop: int) -> torch.Tensor | float:
    return 1.0 if counts is None else counts[:, start:stop].T  # (C, m)


def value_and_grad(pairs: PairRows, w: torch.Tensor, lams: torch.Tensor,
                   counts: torch.Tensor | None = None):  # fmt: skip
    """U (m,), its gradient (m, D) and the curvature weights c_i s_i (1 - s_i) (P, m) at the
    rows of w (m, D), one pass, float64."""
    value = 0.5 * lams * w.square().sum(1)
    grad = lams[:, None] * w
    curvature = torch.empty(len(pairs), w.shape[0], dtype=torch.float64)
    for start, stop, d in pairs.chunks():
        d = d.to(torch.float64)
        margin = d @ w.T  # (C, m)
        c = _counts_of(counts, start, stop)
        s_neg = torch.sigmoid(-margin)
        value = value + (c * softplus(-margin)).sum(0)
        grad -= (c * s_neg).T @ d
        curvature[start:stop] = c * s_neg * (1 - s_neg)
    return value, grad, curvature


def hessian_vector_product(pairs: PairRows, curvature: torch.Tensor, v: torch.Tensor,
                           lams: torch.Tensor) -> torch.Tensor:  # fmt: skip
    """H_j v_j for every row j of v (m, D); float32 products (a CG direction), float64 sums."""
    out = lams[:, None] * v
    v32 = v.to(torch.float32).T  # float32 even for float64 tables: a direction, not the optimum
    for start, stop, d in pairs.chunks():
        d = d.to(torch.float32)
        dv = (d @ v32) * curvature[start:stop].to(torch.float32)  # (C, m)
        out += (dv.T @ d).to(torch.float64)
    return out


def values_along(pairs: PairRows, w: torch.Tensor, step: torch.Tensor, lams: torch.Tensor,
                 counts: torch.Tensor | None = None) -> torch.Tensor:  # fmt: skip
    """U(w_j - t step_j) for every backtracking t (m, T), one pass: the margins are linear
    in t, so two products per chunk serve every trial step."""
    t = _STEPS.to(w)
    moved = w[:, None, :] - t[None, :, None] * step[:, None, :]  # (m, T, D)
    value = 0.5 * lams[:, None] * moved.square().sum(-1)
    for start, stop, d in pairs.chunks():
        d = d.to(torch.float64)
        a, b = d @ w.T, d @ step.T  # (C, m)
        c = _counts_of(counts, start, stop)
        c = c if isinstance(c, float) else c[:, :, None]
        value = value + (c * softplus(-(a[:, :, None] - t * b[:, :, None]))).sum(0)
    return value


def data_hessian(pairs: PairRows, w: torch.Tensor, counts: torch.Tensor | None = None,
                 *, diagonal: bool = False) -> torch.Tensor:  # fmt: skip
    """sum_i c_i s_i (1 - s_i) d_i d_i^T at the rows of w (m, D): (D, D) float64 for one
    row (w (D,)), or the (m, D) diagonals. The full form is the one P x D^2 pass of a fit
    (the Laplace covariance), so float64 throughout."""
    if not diagonal:
        out = torch.zeros(pairs.dim, pairs.dim, dtype=torch.float64)
    for start, stop, d in pairs.chunks():
        d = d.to(torch.float64)
        s = torch.sigmoid(d @ (w.T if w.ndim == 2 else w))  # (C, m) or (C,)
        k = s * (1 - s) * (1.0 if counts is None else counts[start:stop])
        if diagonal:
            part = k.T @ d.square()
            out = part if start == 0 else out + part
        else:
            out += (d.T * k) @ d
    return out


def _conjugate_gradients(pairs, curvature, rhs, lams, precond, rtol, max_iter):
    """Solve H_j x_j = rhs_j for every row by preconditioned CG; one pass per iteration."""
    x, r = torch.zeros_like(rhs), rhs.clone()
    z = precond.solve(r, lams)
    p, rz = z.clone(), (r * z).sum(1)
    goal = rtol * rhs.norm(dim=1)
    active = r.norm(dim=1) > goal
    for _ in range(max_iter):
        if not bool(active.any()):
            break
        a = active.nonzero().squeeze(1)
        hp = hessian_vector_product(pairs, curvature[:, a], p[a], lams[a])
        alpha = rz[a] / (p[a] * hp).sum(1)
        x[a] += alpha[:, None] * p[a]
        r[a] -= alpha[:, None] * hp
        z_a = precond.solve(r[a], lams[a])
        rz_new = (r[a] * z_a).sum(1)
        p[a] = z_a + (rz_new / rz[a])[:, None] * p[a]
        rz[a] = rz_new
        active[a] = r[a].norm(dim=1) > goal[a]
    return x


def fit_bt_map_batch(
    pairs: PairRows,
    prior_precisions,
    *,
    counts: torch.Tensor | None = None,
    init: torch.Tensor | None = None,
    preconditioner: Preconditioner | None = None,
    max_steps: int = 100,
    tol: float = 1e-10,
    cg_max_iter: int = 50,
) -> torch.Tensor:
    """The MAP weights (m, D) float64 of m linear BT heads, solved together.

    Args:
        pairs: the training pairs.
        prior_precisions: (m,) lambda_j > 0, one per head.
        counts: (m, P) non-negative pair multiplicities per head (bootstrap); None = all 1.
        init: (m, D) or (D,) starting point; None = zeros (U is convex: the optimum does
            not depend on it).
        preconditioner: of the CG solves; None = the Fisher at w = 0 (one more pass).
        max_steps: Newton steps.
        tol: a head stops when half its Newton decrement falls below it (then takes the
            full step, inside the quadratic region).
        cg_max_iter: CG iterations per Newton step at most.

    Raises:
        ValueError: a prior precision that is not a finite number > 0.
    """
    lams = torch.as_tensor(prior_precisions, dtype=torch.float64).reshape(-1)
    for lam in lams.tolist():
        if not (math.isfinite(lam) and lam > 0):
            raise ValueError(f"prior_precision must be a finite float > 0; got {lam!r}")
    m, dim = len(lams), pairs.dim
    w = torch.zeros(m, dim, dtype=torch.float64) if init is None else init.to(torch.float64)
    w = w.expand(m, dim).clone()
    if counts is not None:
        counts = counts.to(torch.float64).reshape(m, len(pairs))
    if preconditioner is None:
        preconditioner = pair_statistics(pairs).preconditioner()
    active, first_norm = torch.arange(m), None
    for _ in range(max_steps):
        sub = None if counts is None else counts[active]
        value, grad, curvature = value_and_grad(pairs, w[active], lams[active], sub)
        # inexact Newton: CG to a relative residual that shrinks with the gradient (loose
        # far from the optimum, 1e-4 near it: each step then cuts the error 1e4-fold)
        norm = float(grad.norm(dim=1).max())
        first_norm = first_norm or max(norm, 1e-300)
        rtol = min(0.1, max(1e-4, math.sqrt(norm / first_norm)))
        step = _conjugate_gradients(
            pairs, curvature, grad, lams[active], preconditioner, rtol, cg_max_iter
        )
        decrement = (grad * step).sum(1)  # Newton decrement^2: the predicted decrease x 2
        done = decrement / 2 <= tol
        w[active[done]] -= step[done]
        keep = ~done
        if not bool(keep.any()):
            break
        idx = active[keep]
        trial = values_along(
            pairs, w[idx], step[keep], lams[idx], None if sub is None else sub[keep]
        )
        steps = _STEPS.to(trial)
        ok = trial <= value[keep, None] - 0.25 * steps[None, :] * decrement[keep, None]
        ok[:, -1] = True  # t < 1e-10: stop backtracking
        t = steps[ok.to(torch.int8).argmax(dim=1)]  # the largest accepted step
        w[idx] -= t[:, None] * step[keep]
        active = idx
    return w


def fit_bt_map(
    pairs,
    *,
    prior_precision: float,
    counts: torch.Tensor | None = None,
    init: torch.Tensor | None = None,
    max_steps: int = 100,
    tol: float = 1e-10,
) -> torch.Tensor:
    """The MAP weights (D,) float64 of one linear BT head with prior N(0, I / prior_precision).

    Args:
        pairs: `PairRows`, or an (N, D) tensor of differences e_chosen - e_rejected.
        prior_precision: lambda > 0 (the weight decay of the summed, not averaged, loss).
        counts: (N,) pair multiplicities (a bootstrap resample); None = all 1.
        init, max_steps, tol: as `fit_bt_map_batch`.

    Raises:
        ValueError: a prior precision that is not a finite number > 0.
    """
    if not (math.isfinite(prior_precision) and prior_precision > 0):
        raise ValueError(f"prior_precision must be a finite float > 0; got {prior_precision!r}")
    return fit_bt_map_batch(
        as_pairs(pairs), [prior_precision], counts=None if counts is None else counts[None],
        init=init, max_steps=max_steps, tol=tol,
    )[0]  # fmt: skip
