"""Reward over-optimisation curves: gold reward of policies that optimise a proxy reward.

Following Gao et al. (2023, "Scaling laws for reward model overoptimization") and Coste et
al. (2024, "Reward model ensembles help mitigate overoptimization"): for every proxy, the
expected gold reward of best-of-n (n = 1..N) and of the KL-regularised optimum (a range of
beta) against KL(pi || pi0), averaged over prompts with the standard error over prompts.
A proxy that is over-optimised shows a gold reward that rises with KL, peaks, and falls.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch

from ebrm.overopt.policies import bon_kl, bon_policy, kl_from_uniform, kl_regularised_policy
from ebrm.overopt.stats import mean_se


def bon_curve(gold: torch.Tensor, proxy: torch.Tensor, ns: Sequence[int]) -> list[dict]:
    """Best-of-n points {n, kl, gold, gold_se} for (P, K) gold and proxy rewards."""
    gold = torch.as_tensor(gold, dtype=torch.float64)
    proxy = torch.as_tensor(proxy, dtype=torch.float64)
    points = []
    for n in ns:
        weights = bon_policy(proxy, n)  # (P, K)
        mean, se = mean_se((weights * gold).sum(-1))
        points.append({"n": int(n), "kl": bon_kl(n), "gold": mean, "gold_se": se})
    return points


def kl_regularised_curve(
    gold: torch.Tensor, proxy: torch.Tensor, betas: Sequence[float]
) -> list[dict]:
    """KL-regularised points {beta, kl, gold, gold_se, proxy}, sorted by increasing KL."""
    gold = torch.as_tensor(gold, dtype=torch.float64)
    proxy = torch.as_tensor(proxy, dtype=torch.float64)
    points = []
    for beta in betas:
        policy = kl_regularised_policy(proxy, beta)
        mean, se = mean_se((policy * gold).sum(-1))
        points.append(
            {
                "beta": float(beta),
                "kl": float(kl_from_uniform(policy).mean()),
                "gold": mean,
                "gold_se": se,
                "proxy": float((policy * proxy).sum(-1).mean()),
            }
        )
    return sorted(points, key=lambda p: p["kl"])


def paired_gain(
    gold: torch.Tensor,
    proxy: torch.Tensor,
    reference: torch.Tensor,
    *,
    n: int,
    beta: float,
    reference_beta: float | None = None,
) -> dict:
    """Per-prompt gold difference (proxy - reference policy), mean and s.e. over prompts.

    Both at best-of-n with this `n` and at the KL-regularised policy with this `beta`; the
    prompts are shared, so the pairing removes the prompt-to-prompt variance.
    `reference_beta` (default `beta`) is the reference proxy's temperature.
    """
    reference_beta = beta if reference_beta is None else reference_beta
    gold = torch.as_tensor(gold, dtype=torch.float64)
    out = {}
    for kind, policy in (
        ("best_of_n", lambda r, _b: bon_policy(r, n)),
        ("kl_regularised", kl_regularised_policy),
    ):
        a = (policy(torch.as_tensor(proxy, dtype=torch.float64), beta) * gold).sum(-1)
        b = policy(torch.as_tensor(reference, dtype=torch.float64), reference_beta) * gold
        b = b.sum(-1)
        mean, se = mean_se(a - b)
        out[kind] = {"mean": mean, "se": se}
    return {"n": n, "beta": beta, "reference_beta": reference_beta, **out}


def default_betas(num: int = 41, low: float = 1e-2, high: float = 1e2) -> list[float]:
    """inf, then `num` log-spaced values from `high` down to `low` (in proxy units)."""
    return [math.inf] + torch.logspace(math.log10(high), math.log10(low), num).tolist()


def summarise(points: Sequence[dict]) -> dict:
    """Where the gold reward peaks and its value at the largest KL."""
    peak = max(points, key=lambda p: p["gold"])
    last = max(points, key=lambda p: p["kl"])
    keys = ("kl", "gold", "gold_se", "n", "beta")
    return {
        "peak": {k: peak[k] for k in keys if k in peak},
        "at_max_kl": {k: last[k] for k in keys if k in last},
        "start": points[0]["gold"],
        "drop_from_peak": peak["gold"] - last["gold"],
    }


def proxy_spread(proxy: torch.Tensor) -> float:
    """Mean within-prompt standard deviation of a proxy (1 when it is constant)."""
    spread = float(torch.as_tensor(proxy, dtype=torch.float64).std(-1).mean())
    return spread if spread > 0 else 1.0


def overopt_curves(
    gold: torch.Tensor,
    proxies: Mapping[str, torch.Tensor],
    *,
    max_n: int | None = None,
    betas: Sequence[float] | None = None,
    include_oracle: bool = True,
    relative_betas: bool = True,
) -> dict:
    """Best-of-n and KL-regularised curves for every proxy, with summaries.

    Args:
        gold: (P, K) gold rewards of the pool.
        proxies: name -> (P, K) proxy rewards of the same candidates.
        max_n: largest n for best-of-n (default K).
        betas: temperatures of the KL-regularised policy (default `default_betas()`).
        include_oracle: also add "gold" (the gold reward optimised directly) as a reference.
        relative_betas: multiply `betas` by each proxy's mean within-prompt standard
            deviation (proxies on different scales then cover the same KL range).

    Returns:
        {name: {"best_of_n": [...], "kl_regularised": [...], "summary": {"best_of_n": ...,
        "kl_regularised": ...}}}.
    """
    gold = torch.as_tensor(gold, dtype=torch.float64)
    if gold.ndim != 2:
        raise ValueError(f"gold must be (prompts, candidates); got shape {tuple(gold.shape)}.")
    k = gold.shape[1]
    max_n = k if max_n is None else max_n
    if not 1 <= max_n <= k:
        raise ValueError(f"max_n must be in 1..{k} (the candidates per prompt). Got {max_n}.")
    betas = default_betas() if betas is None else list(betas)
    named = dict(proxies)
    if include_oracle:
        named["gold"] = gold
    out = {}
    for name, proxy in named.items():
        proxy = torch.as_tensor(proxy, dtype=torch.float64)
        if proxy.shape != gold.shape:
            raise ValueError(
                f"proxy {name!r} has shape {tuple(proxy.shape)} but gold has {tuple(gold.shape)}."
            )
        bon = bon_curve(gold, proxy, range(1, max_n + 1))
        # beta in units of the proxy's own spread, so every proxy spans the same KL range
        scale = proxy_spread(proxy) if relative_betas else 1.0
        klr = kl_regularised_curve(gold, proxy, [b * scale for b in betas])
        for point in klr:
            point["beta_relative"] = point["beta"] / scale
        out[name] = {
            "best_of_n": bon,
            "kl_regularised": klr,
            "summary": {"best_of_n": summarise(bon), "kl_regularised": summarise(klr)},
        }
    return out
