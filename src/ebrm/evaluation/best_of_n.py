"""The unbiased best-of-n estimator: the expected gold reward of a proxy's best of n.

`expected_best_of_n(gold, proxy, n)` is the estimator of Nakano et al. (2021, WebGPT) used
by Gao et al. (2023): from a pool of m >= n scored samples, the average over all n-subsets
of the gold score of the subset's proxy-argmax, computed exactly from order statistics:
with the pool sorted by proxy score, the i-th smallest (1-based) is the argmax of
C(i-1, n-1) of the C(m, n) subsets. Ties in the proxy are broken uniformly at random (each
tied maximum gets an equal share), so the result does not depend on the input order.
The over-optimisation harness (`ebrm.overopt`) measures its best-of-n curves with it;
`ebrm.integrations.best_of_n` picks the best candidate per prompt.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch


def _log_comb(a: torch.Tensor, n: int) -> torch.Tensor:
    """log C(a, n) elementwise, -inf where a < n."""
    a = a.to(torch.float64)
    out = torch.lgamma(a + 1) - math.lgamma(n + 1) - torch.lgamma((a - n).clamp(min=0) + 1)
    return torch.where(a >= n, out, torch.full_like(out, -math.inf))


def best_of_n_weights(proxy: Sequence[float] | torch.Tensor, n: int) -> torch.Tensor:
    """P(sample i is the chosen proxy-argmax of a uniformly random n-subset), shape (m,).

    Raises:
        ValueError: n < 1 or n > m.
    """
    proxy = torch.as_tensor(proxy, dtype=torch.float64).flatten()
    m = proxy.numel()
    if not 1 <= n <= m:
        raise ValueError(f"n must be in 1..{m} (the pool size). Got {n} instead.")
    if not torch.isfinite(proxy).all():
        raise ValueError("proxy scores must be finite")
    values, counts = torch.unique(proxy, sorted=True, return_counts=True)  # ascending groups
    below = torch.cumsum(counts, 0) - counts  # samples strictly below each group
    # P(max of the subset lies in the group) = [C(L + k, n) - C(L, n)] / C(m, n)
    log_total = _log_comb(torch.tensor(float(m)), n)
    upper = torch.exp(_log_comb(below + counts, n) - log_total)
    lower = torch.exp(_log_comb(below, n) - log_total)
    group_weight = (upper - lower) / counts  # shared equally by the tied members
    index = torch.searchsorted(values, proxy)
    return group_weight[index]


def expected_best_of_n(
    rewards_gold: Sequence[float] | torch.Tensor,
    rewards_proxy: Sequence[float] | torch.Tensor,
    n: int,
) -> float:
    """Expected gold reward of the proxy's best of n samples drawn from the pool (unbiased).

    Args:
        rewards_gold: (m,) gold scores of the pool's samples.
        rewards_proxy: (m,) proxy scores of the same samples (what best-of-n maximises).
        n: samples per draw, 1 <= n <= m.

    Returns:
        The mean over all n-subsets of the pool of the gold score of the subset's proxy
        argmax (ties shared equally). n = 1 gives the pool's mean gold score.
    """
    gold = torch.as_tensor(rewards_gold, dtype=torch.float64).flatten()
    proxy = torch.as_tensor(rewards_proxy, dtype=torch.float64).flatten()
    if gold.shape != proxy.shape:
        raise ValueError(
            f"rewards_gold has {gold.numel()} values but rewards_proxy has {proxy.numel()}; "
            "give one gold and one proxy score per sample."
        )
    return float((best_of_n_weights(proxy, n) * gold).sum())


def best_of_n_curve(
    rewards_gold: Sequence[float] | torch.Tensor,
    rewards_proxy: Sequence[float] | torch.Tensor,
    ns: Sequence[int],
) -> list[float]:
    """`expected_best_of_n` for every n in `ns`."""
    return [expected_best_of_n(rewards_gold, rewards_proxy, n) for n in ns]
