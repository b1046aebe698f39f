"""The grid posterior's moments (`ebrm.energy.posterior`): loops from the formulas, a
closed-form Gaussian, and gradients against finite differences."""

from __future__ import annotations

import math

import pytest
import torch

from ebrm.energy.posterior import half_width, moments, trapezoid_log_weights


def _loop_moments(scores: list[float], grid: list[float]) -> tuple[float, float, float]:
    """mean, std and log Z of exp(f) by the trapezoid rule, written out point by point."""
    weights = [0.0] * len(grid)
    for i in range(len(grid) - 1):
        gap = grid[i + 1] - grid[i]
        weights[i] += gap / 2
        weights[i + 1] += gap / 2
    z = sum(w * math.exp(f) for w, f in zip(weights, scores, strict=True))
    mass = [w * math.exp(f) / z for w, f in zip(weights, scores, strict=True)]
    mean = sum(p * y for p, y in zip(mass, grid, strict=True))
    var = sum(p * (y - mean) ** 2 for p, y in zip(mass, grid, strict=True))
    return mean, math.sqrt(var), math.log(z)


def test_moments_match_a_loop_on_an_uneven_grid():
    gen = torch.Generator().manual_seed(0)
    grid = torch.cumsum(0.1 + torch.rand(40, generator=gen, dtype=torch.float64), 0) - 10
    scores = 3 * torch.randn(3, 40, generator=gen, dtype=torch.float64)
    m = moments(scores, grid)
    for row in range(3):
        mean, std, log_z = _loop_moments(scores[row].tolist(), grid.tolist())
        assert m.mean[row].item() == pytest.approx(mean, rel=1e-12)
        assert m.std[row].item() == pytest.approx(std, rel=1e-12)
        assert m.log_z[row].item() == pytest.approx(log_z, rel=1e-12)
    assert torch.allclose(m.masses.sum(-1), torch.ones(3, dtype=torch.float64))
    # a per-row grid gives the same numbers as the shared one
    per_row = moments(scores, grid.expand(3, -1))
    assert torch.allclose(per_row.mean, m.mean, rtol=1e-14, atol=1e-14)


def test_moments_of_a_gaussian_are_its_parameters():
    # f = c - (y - mu)^2 / (2 s^2): mean mu, std s, Z = exp(c) s sqrt(2 pi)
    grid = torch.linspace(-20, 20, 161, dtype=torch.float64)
    mu, s, c = torch.tensor([1.3, -2.0]), torch.tensor([0.9, 2.5]), torch.tensor([0.5, -1.0])
    mu, s, c = mu.double(), s.double(), c.double()
    scores = c[:, None] - (grid - mu[:, None]).square() / (2 * s[:, None] ** 2)
    m = moments(scores, grid)
    assert torch.allclose(m.mean, mu, atol=1e-10)
    assert torch.allclose(m.std, s, atol=1e-10)
    assert torch.allclose(m.log_z, c + s.log() + 0.5 * math.log(2 * math.pi), atol=1e-10)


def test_moments_with_other_weights_use_them():
    grid = torch.linspace(-3, 3, 13, dtype=torch.float64)
    scores = torch.randn(2, 13, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    uniform = torch.zeros(13, dtype=torch.float64)  # log 1: a plain sum over the points
    m = moments(scores, grid, log_weights=uniform)
    p = scores.exp() / scores.exp().sum(-1, keepdim=True)
    assert torch.allclose(m.mean, p @ grid)
    assert torch.allclose(m.log_z, scores.exp().sum(-1).log())
    default = moments(scores, grid, log_weights=trapezoid_log_weights(grid))
    assert torch.allclose(default.mean, moments(scores, grid).mean, rtol=0, atol=0)


def test_moments_and_spread_gradients_match_finite_differences():
    grid = torch.linspace(-6, 6, 49, dtype=torch.float64)
    gen = torch.Generator().manual_seed(2)
    base = -(grid - 0.7).square() / 2 + 0.3 * torch.sin(3 * grid)
    scores = (base + 0.05 * torch.randn(49, generator=gen, dtype=torch.float64)).unsqueeze(0)

    def stats(f):
        m = moments(f, grid)
        peak = f.max(dim=1).values + 0.01  # a polished mode just above the grid's best
        return torch.stack([m.mean, m.std, m.log_z, half_width(f, grid, peak)], 1)

    leaf = scores.clone().requires_grad_(True)
    for j in range(4):
        (grad,) = torch.autograd.grad(stats(leaf)[0, j], leaf)
        numeric = torch.zeros_like(scores)
        for i in range(scores.shape[1]):
            step = torch.zeros_like(scores)
            step[0, i] = 1e-6
            numeric[0, i] = (stats(scores + step)[0, j] - stats(scores - step)[0, j]) / 2e-6
        assert torch.allclose(grad, numeric, atol=1e-6), j


def test_spread_gradient_is_finite_where_a_side_never_drops():
    # f rises to the grid's right end: no crossing on the right, the interval is cut there;
    # the unused branches of the crossing formula must not leak NaN into the gradient
    grid = torch.linspace(-4, 4, 33, dtype=torch.float64)
    scores = (grid / 4).unsqueeze(0).repeat(2, 1)
    scores[1] = 0.0  # and a flat row, below the level nowhere
    leaf = scores.clone().requires_grad_(True)
    peak = leaf.max(dim=1).values
    spread = half_width(leaf, grid, peak)
    assert torch.allclose(spread, torch.tensor([1.0, 4.0], dtype=torch.float64))  # hand-worked
    (grad,) = torch.autograd.grad(spread.sum(), leaf)
    assert bool(torch.isfinite(grad).all())
