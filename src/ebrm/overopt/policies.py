"""Policies that optimise a proxy reward over a fixed pool, and their KL to the pool.

Each prompt has a pool of K candidates; the reference policy pi0 is uniform over it.

* best-of-n: the exact unbiased estimator (`best_of_n_weights`, Nakano et al. 2021) gives
  each candidate's probability of being the proxy-argmax of a uniformly random n-subset;
  `bon_kl` is the analytic KL(best-of-n || pi0) = log n - (n - 1)/n of Gao et al. (2023),
  exact for continuous rewards and an infinite pool; `kl_from_uniform` is the exact KL of
  any policy over the pool.
* the KL-regularised optimum of max E_pi[r] - beta KL(pi || pi0):
  pi_beta(k) = pi0(k) exp(r_k / beta) / Z (the closed form `policy_gradient.py` is checked
  against).
"""

from __future__ import annotations

import math

import torch

from ebrm.evaluation.best_of_n import best_of_n_weights


def bon_kl(n: int) -> float:
    """KL(best-of-n || pi0) = log n - (n - 1) / n (Stiennon et al. 2020; Gao et al. 2023)."""
    if n < 1:
        raise ValueError(f"n must be >= 1. Got {n} instead.")
    return math.log(n) - (n - 1) / n


def kl_regularised_policy(proxy: torch.Tensor, beta: float) -> torch.Tensor:
    """pi(k) ∝ exp(r_k / beta) over each row (pi0 uniform); (P, K) -> (P, K) float64.

    beta = inf gives pi0; beta -> 0 gives the proxy argmax (ties shared).
    """
    if not beta > 0:
        raise ValueError(f"beta must be > 0. Got {beta} instead.")
    proxy = torch.as_tensor(proxy, dtype=torch.float64)
    if math.isinf(beta):
        return torch.full_like(proxy, 1.0 / proxy.shape[-1])
    return torch.softmax(proxy / beta, dim=-1)


def kl_from_uniform(policy: torch.Tensor) -> torch.Tensor:
    """KL(pi || uniform) = sum_k pi_k log(K pi_k) per row, with 0 log 0 = 0; (P, K) -> (P,)."""
    policy = torch.as_tensor(policy, dtype=torch.float64)
    k = policy.shape[-1]
    return torch.xlogy(policy, policy).sum(-1) + math.log(k)


def bon_policy(proxy: torch.Tensor, n: int) -> torch.Tensor:
    """Best-of-n selection probabilities per row (P, K), ties in a row shared equally.

    The untied weight of rank r (ascending) is C(r, n-1) / C(K, n); a tied group's total
    is the sum of its ranks' weights (the sum telescopes to P(the subset's max lies in the
    group)), shared equally by its members: `best_of_n_weights` row by row, vectorised.
    """
    proxy = torch.as_tensor(proxy, dtype=torch.float64)
    values, order = proxy.sort(-1)  # (P, K) ascending
    by_rank = best_of_n_weights(torch.arange(proxy.shape[1], dtype=torch.float64), n)
    starts = torch.ones_like(values, dtype=torch.bool)
    starts[:, 1:] = values[:, 1:] != values[:, :-1]
    group = starts.long().cumsum(-1) - 1  # (P, K) tie group of each sorted position
    totals = torch.zeros_like(values).scatter_add_(1, group, by_rank.expand_as(values))
    sizes = torch.zeros_like(values).scatter_add_(1, group, torch.ones_like(values))
    shared = (totals / sizes.clamp(min=1)).gather(1, group)
    return torch.empty_like(values).scatter_(1, order, shared)


def beta_for_kl(
    proxy: torch.Tensor,
    target: float,
    *,
    iterations: int = 40,
    tolerance: float = 1e-6,
    upper: float | None = None,
) -> float:
    """The beta whose KL-regularised policy has mean KL(pi || pi0) over prompts = `target`.

    Bisection on log beta (the KL falls monotonically as beta grows). `target` must lie
    below the KL of the proxy's argmax policy (log K when there are no ties). `upper`: a
    beta known to give a KL below `target` (e.g. the previous, smaller target's beta).
    """
    proxy = torch.as_tensor(proxy, dtype=torch.float64)
    if target <= 0:
        return math.inf
    spread = float(proxy.std(-1).mean()) or 1.0
    lo, hi = math.log(spread * 1e-4), math.log(spread * 1e3)  # KL(lo) ~ max, KL(hi) ~ 0
    if upper is not None and math.isfinite(upper) and lo < math.log(upper) < hi:
        hi = math.log(upper)
    for _ in range(iterations):
        mid = 0.5 * (lo + hi)
        kl = float(kl_from_uniform(kl_regularised_policy(proxy, math.exp(mid))).mean())
        if abs(kl - target) < tolerance:
            return math.exp(mid)
        lo, hi = (mid, hi) if kl > target else (lo, mid)
    return math.exp(0.5 * (lo + hi))
