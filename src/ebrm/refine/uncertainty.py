"""What refinement derives from posteriors: P(y_a > y_b) and the conservative rewards.

The posterior's moments, quantiles and spread are `ebrm.energy.posterior`'s. P(a > b)
integrates one posterior against the other's trapezoid CDF, which is O(spacing^2): that
is why grid.py zooms posteriors narrower than two cells.
"""

from __future__ import annotations

import torch

from ebrm.energy.posterior import moments


def cdf(scores: torch.Tensor, log_z: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """The posterior CDF at the grid points (N, G): cumulative trapezoid of the density.

    It starts at 0 and ends at 1 (up to rounding), consistent with trapezoid `moments`.
    """
    y = grid.to(device=scores.device, dtype=torch.float64).expand(scores.shape)  # (N, G)
    density = (scores.to(torch.float64) - log_z.unsqueeze(-1)).exp()  # (N, G), <= 1/min gap
    pieces = (density[:, 1:] + density[:, :-1]) / 2 * (y[:, 1:] - y[:, :-1])  # (N, G-1)
    return torch.cat([torch.zeros_like(pieces[:, :1]), pieces.cumsum(-1)], dim=-1)


def cdf_at(
    points: torch.Tensor, grid: torch.Tensor, cum: torch.Tensor, density: torch.Tensor
) -> torch.Tensor:
    """A trapezoid CDF known at per-row grid points (N, G), evaluated at (N, K) points.

    Inside a cell the density is linear (the trapezoid rule's model), so the CDF is the
    matching quadratic; it is 0 below the grid and 1 above it.
    """
    grid = grid.to(torch.float64).expand(cum.shape).contiguous()
    points = points.to(torch.float64).contiguous()
    hi = torch.searchsorted(grid, points).clamp(1, grid.shape[1] - 1)
    lo = hi - 1
    g_lo = grid.gather(-1, lo)
    width = grid.gather(-1, hi) - g_lo
    t = (points - g_lo).clamp(min=torch.zeros_like(width), max=width)
    d0, d1 = density.gather(-1, lo), density.gather(-1, hi)
    value = cum.gather(-1, lo) + d0 * t + (d1 - d0) * t.square() / (2 * width)
    value = torch.where(points < grid[:, :1], torch.zeros_like(value), value)
    return torch.where(points > grid[:, -1:], torch.ones_like(value), value).clamp(0, 1)


def prob_greater(
    scores_a: torch.Tensor,
    grid_a: torch.Tensor,
    std_a: torch.Tensor,
    scores_b: torch.Tensor,
    grid_b: torch.Tensor,
    std_b: torch.Tensor,
) -> torch.Tensor:
    """P(Y_a > Y_b) (N,) for independent posteriors, f on their own (N, G) or (G,) grids.

    P = ∫ p_a(y) F_b(y) dy = 1 - ∫ p_b(y) F_a(y) dy. The narrower posterior is summed on
    its own grid against the wider one's (smoother) CDF, which stays accurate when one
    posterior is much sharper than the other; equal widths average both forms. Either
    way prob_greater(a, b) + prob_greater(b, a) = 1.
    """

    def parts(scores, grid):
        grid = grid.to(torch.float64).expand(scores.shape)
        m = moments(scores.to(torch.float64), grid)
        density = (scores.to(torch.float64) - m.log_z.unsqueeze(-1)).exp()
        return m.masses, grid, cdf(scores, m.log_z, grid), density

    p_a, g_a, cum_a, dens_a = parts(scores_a, grid_a)
    p_b, g_b, cum_b, dens_b = parts(scores_b, grid_b)
    from_a = (p_a * cdf_at(g_a, g_b, cum_b, dens_b)).sum(-1)  # ∫ p_a F_b
    from_b = 1 - (p_b * cdf_at(g_b, g_a, cum_a, dens_a)).sum(-1)  # 1 - ∫ p_b F_a
    both = (from_a + from_b) / 2
    p = torch.where(std_a < std_b, from_a, torch.where(std_b < std_a, from_b, both))
    return p.clamp(0, 1)


def spread_lower_bound(mean: torch.Tensor, spread: torch.Tensor, k: float) -> torch.Tensor:
    """The energy head's conservative reward, mean - k * spread (DESIGN §1.7).

    `spread` is `ebrm.energy.posterior.half_width`, a width of the density itself; the
    grid std would grow with the grid's range wherever f has a floor.
    """
    return mean - k * spread


def std_lower_bound(mean: torch.Tensor, std: torch.Tensor, k: float) -> torch.Tensor:
    """The references' conservative reward, mean - k * std (their std is a model's own:
    a Laplace posterior's or an ensemble's spread of rewards)."""
    return mean - k * std
