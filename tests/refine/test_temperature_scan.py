"""fit_temperature against a brute-force scan of the negative log-likelihood."""

import math

import torch

from ebrm.refine.calibration import fit_temperature


def _nll(p_first_wins: list[float], t: float) -> float:
    # written from the definition: -mean log sigmoid(logit(p) / T)
    total = 0.0
    for p in p_first_wins:
        z = math.log(p / (1 - p)) / t
        total += math.log1p(math.exp(-z)) if z > -30 else -z
    return total / len(p_first_wins)


def test_fit_temperature_minimises_the_nll_of_a_brute_force_scan():
    gen = torch.Generator().manual_seed(5)
    logits = torch.randn(400, generator=gen, dtype=torch.float64) * 3
    wins = torch.rand(400, generator=gen, dtype=torch.float64) < torch.sigmoid(logits / 2.5)
    p = torch.sigmoid(torch.where(wins, logits, -logits)).clamp(1e-6, 1 - 1e-6)
    values = p.tolist()
    fitted = fit_temperature(p)
    scan = [0.05 * 1.01**k for k in range(900)]  # 0.05 .. ~390, finer than the fit's grid
    best_t = min(scan, key=lambda t: _nll(values, t))
    # the fit's log-spaced grid has a ratio of 4000 ** (1 / 400) ~ 1.021 between points
    assert abs(math.log(fitted / best_t)) < math.log(1.021)
    assert _nll(values, fitted) <= _nll(values, best_t) + 1e-4
