"""The reference fits as they were before they scaled: the baseline, for tests and benchmarks.

Not a second implementation to call: `ebrm.references` fits chunk by chunk
(`bt_map`, `prior`). This is the previous one, kept verbatim in its maths so that
`tests/references/test_scaling.py` and `benchmarks/bench_references.py` can show the new fit
gives the same MAP weights, prior precisions, Laplace stds and ensemble outputs. It gathers
every pair, builds the (P, D) float64 difference matrix, and runs a full Newton solve (one
D x D Hessian per step) for every candidate prior precision, twice (once per reference).
"""

from __future__ import annotations

import torch

from ebrm.references.ensemble import DEFAULT_SIZE, EnsembleReference, bootstrap_counts
from ebrm.references.laplace import (
    DEFAULT_PRIOR_MULTIPLE,
    MAX_FULL_DIM,
    PRIOR_MULTIPLES,
    LaplaceReference,
    pair_nll,
)


def data_precision_scale(diff: torch.Tensor) -> float:
    diff = diff.to(torch.float64)
    return max(float(diff.square().sum()) / (4.0 * diff.shape[1]), 1e-12)


def neg_log_posterior(w, diff, prior_precision, counts=None):
    nll = torch.nn.functional.softplus(-(diff @ w))
    if counts is not None:
        nll = nll * counts
    return nll.sum() + 0.5 * prior_precision * w.square().sum()


def hessian(w, diff, prior_precision, counts=None):
    s = torch.sigmoid(diff @ w)
    curvature = s * (1 - s)
    if counts is not None:
        curvature = curvature * counts
    h = (diff.T * curvature) @ diff
    h.diagonal().add_(prior_precision)
    return h


def hessian_diagonal(w, diff, prior_precision, counts=None):
    s = torch.sigmoid(diff @ w)
    curvature = s * (1 - s)
    if counts is not None:
        curvature = curvature * counts
    return curvature @ diff.square() + prior_precision


def fit_bt_map(diff, *, prior_precision, counts=None, init=None, max_steps=100, tol=1e-10):
    """Newton with Armijo backtracking on the (P, D) float64 difference matrix."""
    diff = diff.to(torch.float64)
    if counts is not None:
        counts = counts.to(torch.float64)
    w = torch.zeros(diff.shape[1], dtype=torch.float64) if init is None else init.to(diff)
    value = neg_log_posterior(w, diff, prior_precision, counts)
    for _ in range(max_steps):
        s = torch.sigmoid(-(diff @ w))
        weight = s if counts is None else s * counts
        grad = -(weight @ diff) + prior_precision * w
        step = torch.linalg.solve(hessian(w, diff, prior_precision, counts), grad)
        decrement = float(grad @ step)
        if decrement / 2 <= tol:
            return w - step
        t = 1.0
        while True:
            candidate = w - t * step
            new_value = neg_log_posterior(candidate, diff, prior_precision, counts)
            if new_value <= value - 0.25 * t * decrement or t < 1e-10:
                break
            t *= 0.5
        w, value = candidate, new_value
    return w


def posterior(diff, center, prior_precision, *, max_full_dim, init=None) -> LaplaceReference:
    w = fit_bt_map(diff, prior_precision=prior_precision, init=init)
    if diff.shape[1] <= max_full_dim:
        chol = torch.linalg.cholesky(hessian(w, diff.to(torch.float64), prior_precision))
        cov = torch.cholesky_inverse(chol)
        cov = (cov + cov.T) / 2
    else:
        cov = 1.0 / hessian_diagonal(w, diff.to(torch.float64), prior_precision)
    return LaplaceReference(w, center, cov, float(prior_precision))


def fit_laplace(train_chosen, train_rejected, val_chosen=None, val_rejected=None, *,
                prior_multiples=PRIOR_MULTIPLES, max_full_dim=MAX_FULL_DIM):  # fmt: skip
    train_chosen, train_rejected = train_chosen.to(torch.float64), train_rejected.to(torch.float64)
    diff = train_chosen - train_rejected
    center = torch.cat([train_chosen, train_rejected]).mean(0)
    scale = data_precision_scale(diff)
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
    report = {"prior_multiple": best[2], "prior_precision": best[1].prior_precision,
              "val_nll": best[0], "tried": tried}  # fmt: skip
    return best[1], report


def choose_prior_precision(diff, val_diff, *, prior_multiples=PRIOR_MULTIPLES):
    scale = data_precision_scale(diff)
    if val_diff is None or len(val_diff) == 0:
        lam = DEFAULT_PRIOR_MULTIPLE * scale
        return lam, fit_bt_map(diff, prior_precision=lam), []
    tried, best, w = [], None, None
    for multiple in prior_multiples:
        w = fit_bt_map(diff, prior_precision=multiple * scale, init=w)
        nll = pair_nll(torch.sigmoid(val_diff.to(torch.float64) @ w))
        tried.append({"prior_multiple": multiple, "val_nll": nll})
        if best is None or nll < best[0]:
            best = (nll, multiple * scale, w)
    return best[1], best[2], tried


def fit_ensemble(train_chosen, train_rejected, val_chosen=None, val_rejected=None, *,
                 size=DEFAULT_SIZE, seed=0, prior_precision=None):  # fmt: skip
    train_chosen, train_rejected = train_chosen.to(torch.float64), train_rejected.to(torch.float64)
    diff = train_chosen - train_rejected
    tried, init = [], None
    if prior_precision is None:
        val_diff = None if val_chosen is None else val_chosen - val_rejected
        prior_precision, init, tried = choose_prior_precision(diff, val_diff)
    counts = bootstrap_counts(diff.shape[0], size, seed)
    weights = torch.stack(
        [fit_bt_map(diff, prior_precision=prior_precision, counts=c, init=init) for c in counts]
    )
    center = torch.cat([train_chosen, train_rejected]).mean(0)
    ref = EnsembleReference(weights, center, float(prior_precision), seed)
    return ref, {"prior_precision": float(prior_precision), "size": size, "tried": tried}
