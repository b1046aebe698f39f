"""The maximum-a-posteriori Bradley-Terry head on fixed embeddings, and its Hessian.

A linear reward `r(e) = w . e` with a Gaussian prior `w ~ N(0, I / lambda)` and the
Bradley-Terry likelihood `P(chosen > rejected) = sigmoid(w . d)`, `d = e_chosen - e_rejected`,
has the negative log posterior (up to a constant)

    U(w) = sum_i c_i softplus(-w . d_i) + lambda / 2 ||w||^2

with `c_i` a per-pair count (1, or the multiplicity of a bootstrap resample). `U` is
strictly convex, so Newton's method with a backtracking line search reaches the MAP
exactly in a few steps; weight decay of the usual loop is this prior. Its Hessian is the
Laplace posterior's precision:

    H(w) = sum_i c_i s_i (1 - s_i) d_i d_i^T + lambda I,    s_i = sigmoid(w . d_i).

Beyond `NEWTON_MAX_DIM` dimensions a D x D solve per step is slow, so full-batch L-BFGS
(torch.optim.LBFGS) finds the same optimum to its tolerance instead.

Not a copy of `ebrm.rm.bt_head.fit_bt_head`: that is the minibatch AdamW loop of
`ebrm base-rm train --freeze-encoder` (an epoch budget or early stopping, not an optimum);
a Laplace posterior needs the exact mode, which is this module, used by both references.
"""

from __future__ import annotations

import math

import torch

NEWTON_MAX_DIM = 8192  # Newton (a D x D solve per step) up to this dimension, L-BFGS beyond


def data_precision_scale(diff: torch.Tensor) -> float:
    """The average eigenvalue of the Fisher information at w = 0: tr(sum d d^T / 4) / D.

    Prior precisions are searched as multiples of it, so the search does not depend on
    the units of the embeddings.
    """
    diff = diff.to(torch.float64)
    return max(float(diff.square().sum()) / (4.0 * diff.shape[1]), 1e-12)


def neg_log_posterior(
    w: torch.Tensor, diff: torch.Tensor, prior_precision: float, counts: torch.Tensor | None = None
) -> torch.Tensor:
    """U(w) above (a scalar, float64)."""
    margins = diff @ w  # (N,)
    nll = torch.nn.functional.softplus(-margins)
    if counts is not None:
        nll = nll * counts
    return nll.sum() + 0.5 * prior_precision * w.square().sum()


def hessian(
    w: torch.Tensor, diff: torch.Tensor, prior_precision: float, counts: torch.Tensor | None = None
) -> torch.Tensor:
    """H(w) above, (D, D) float64."""
    s = torch.sigmoid(diff @ w)
    curvature = s * (1 - s)  # (N,)
    if counts is not None:
        curvature = curvature * counts
    h = (diff.T * curvature) @ diff  # (D, D)
    h.diagonal().add_(prior_precision)
    return h


def hessian_diagonal(
    w: torch.Tensor, diff: torch.Tensor, prior_precision: float, counts: torch.Tensor | None = None
) -> torch.Tensor:
    """diag H(w), (D,) float64, without forming the D x D matrix."""
    s = torch.sigmoid(diff @ w)
    curvature = s * (1 - s)
    if counts is not None:
        curvature = curvature * counts
    return curvature @ diff.square() + prior_precision


def _newton(diff, prior_precision, counts, max_steps, tol, w) -> torch.Tensor:
    value = neg_log_posterior(w, diff, prior_precision, counts)
    for _ in range(max_steps):
        s = torch.sigmoid(-(diff @ w))  # 1 - sigmoid(margin)
        weight = s if counts is None else s * counts
        grad = -(weight @ diff) + prior_precision * w  # (D,)
        h = hessian(w, diff, prior_precision, counts)
        step = torch.linalg.solve(h, grad)
        decrement = float(grad @ step)  # Newton decrement^2: the predicted decrease x 2
        if decrement / 2 <= tol:
            return w - step  # inside the quadratic region: the full step squares the error
        t = 1.0
        while True:  # Armijo backtracking; U is convex so this ends
            candidate = w - t * step
            new_value = neg_log_posterior(candidate, diff, prior_precision, counts)
            if new_value <= value - 0.25 * t * decrement or t < 1e-10:
                break
            t *= 0.5
        w, value = candidate, new_value
    return w


def _lbfgs(diff, prior_precision, counts, max_steps, tol, w) -> torch.Tensor:
    w = w.clone().requires_grad_(True)
    optimizer = torch.optim.LBFGS(
        [w],
        max_iter=max_steps * 20,
        tolerance_grad=tol,
        tolerance_change=1e-14,
        history_size=20,
        line_search_fn="strong_wolfe",
    )

    def closure():
        optimizer.zero_grad()
        loss = neg_log_posterior(w, diff, prior_precision, counts)
        loss.backward()
        return loss

    optimizer.step(closure)
    return w.detach()


def fit_bt_map(
    diff: torch.Tensor,
    *,
    prior_precision: float,
    counts: torch.Tensor | None = None,
    init: torch.Tensor | None = None,
    max_steps: int = 100,
    tol: float = 1e-10,
) -> torch.Tensor:
    """The MAP weights (D,) float64 of a linear BT head with prior N(0, I / prior_precision).

    Args:
        diff: (N, D) e_chosen - e_rejected of the training pairs.
        prior_precision: lambda > 0 (the weight decay of the summed, not averaged, loss).
        counts: (N,) non-negative pair multiplicities (a bootstrap resample); None = all 1.
        init: (D,) starting point (a nearby solution saves steps; U is convex, so the
            optimum does not depend on it); None = zeros.
        max_steps: Newton steps (x 20 L-BFGS iterations above NEWTON_MAX_DIM).
        tol: stop when half the Newton decrement falls below it.

    Raises:
        ValueError: a prior precision that is not a finite number > 0.
    """
    if not (math.isfinite(prior_precision) and prior_precision > 0):
        raise ValueError(f"prior_precision must be a finite float > 0; got {prior_precision!r}")
    diff = diff.to(torch.float64)
    if counts is not None:
        counts = counts.to(torch.float64)
    w = torch.zeros(diff.shape[1], dtype=torch.float64) if init is None else init.to(diff)
    fit = _newton if diff.shape[1] <= NEWTON_MAX_DIM else _lbfgs
    return fit(diff, float(prior_precision), counts, max_steps, tol, w)
