"""Statistics over prompts: mean and standard error, paired differences, rank correlation."""

from __future__ import annotations

import math

import torch
from scipy.stats import spearmanr


def mean_se(values: torch.Tensor) -> tuple[float, float]:
    """Mean over prompts (P,) and its standard error (0 for one prompt)."""
    values = torch.as_tensor(values, dtype=torch.float64).reshape(-1)
    n = values.numel()
    se = float(values.std(unbiased=True) / math.sqrt(n)) if n > 1 else 0.0
    return float(values.mean()), se


def paired(a: torch.Tensor, b: torch.Tensor, *, z: float = 1.96) -> dict:
    """Mean of the per-prompt differences a - b with its s.e. and a normal 95% interval."""
    mean, se = mean_se(torch.as_tensor(a, dtype=torch.float64) - b)
    return {"mean": mean, "se": se, "ci95": [mean - z * se, mean + z * se]}


def mean_spearman(gold: torch.Tensor, proxy: torch.Tensor) -> float:
    """Mean over prompts of the within-prompt Spearman correlation (ties: average ranks).

    Args:
        gold, proxy: (P, K) rewards of the same candidates.
    """
    rows = []
    for g, p in zip(torch.as_tensor(gold).double(), torch.as_tensor(proxy).double(), strict=True):
        if bool((g == g[0]).all() or (p == p[0]).all()):
            continue  # a constant row has no ranking: left out
        rows.append(float(spearmanr(g.numpy(), p.numpy()).statistic))
    return sum(rows) / len(rows) if rows else math.nan
