"""Posterior statistics of p(y | e) ∝ exp f(e, y) from f evaluated on a 1-D grid.

Integrals use the trapezoid rule on the (sorted, possibly uneven) grid and are done in
log space: log Z = logsumexp(f + log w) with w the trapezoid weights, so no exp(f) ever
overflows. The trapezoid rule is spectrally accurate for smooth densities that decay
inside the grid (moments and log Z of a Gaussian are exact to float precision once the
spacing is below its std); CDFs and quantiles are O(spacing^2), which is why grid.py
zooms posteriors narrower than two cells.
"""

from __future__ import annotations

import torch

from ebrm.errors import ConfigError


def trapezoid_log_weights(grid: torch.Tensor) -> torch.Tensor:
    """log trapezoid weights of a strictly increasing grid, (G,) or per row (N, G)."""
    grid = grid.to(torch.float64)
    gaps = grid[..., 1:] - grid[..., :-1]  # (..., G-1)
    weights = torch.zeros_like(grid)
    weights[..., :-1] += gaps / 2
    weights[..., 1:] += gaps / 2
    return weights.log()


def check_grid(grid: torch.Tensor) -> torch.Tensor:
    """Validate a grid: 1-D, >= 3 finite, strictly increasing points.

    Raises:
        ConfigError: naming what is wrong.
    """
    grid = torch.as_tensor(grid)
    if grid.ndim != 1 or grid.numel() < 3:
        raise ConfigError(
            f"The refinement grid must be a 1-D tensor of >= 3 points; got shape "
            f"{tuple(grid.shape)}"
        )
    if not torch.isfinite(grid).all() or not bool((grid[1:] > grid[:-1]).all()):
        raise ConfigError("The refinement grid must be finite and strictly increasing")
    return grid


def log_masses(scores: torch.Tensor, grid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Normalised log probability masses of the grid points and log Z.

    Args:
        scores: (N, G) f(e, y) on the grid.
        grid: (G,) shared or (N, G) per row, strictly increasing.

    Returns:
        log_p (N, G) float64 with logsumexp over G equal to 0, and log_z (N,) float64 where
        Z = ∫ exp f(e, y) dy over the grid's range.
    """
    log_w = scores.to(torch.float64) + trapezoid_log_weights(grid).to(scores.device)
    log_z = torch.logsumexp(log_w, dim=-1)  # (N,)
    return log_w - log_z.unsqueeze(-1), log_z


def moments(log_p: torch.Tensor, grid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Posterior mean and std (N,) from normalised log masses (N, G); grid (G,) or (N, G)."""
    p = log_p.exp()
    y = grid.to(device=log_p.device, dtype=torch.float64)
    mean = (p * y).sum(-1)
    var = (p * (y - mean.unsqueeze(-1)).square()).sum(-1)
    return mean, var.clamp_min(0).sqrt()


def cdf(scores: torch.Tensor, log_z: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """The posterior CDF at the grid points (N, G): cumulative trapezoid of the density.

    It starts at 0 and ends at 1 (up to rounding), consistent with `log_masses`.
    """
    y = grid.to(device=scores.device, dtype=torch.float64).expand(scores.shape)  # (N, G)
    density = (scores.to(torch.float64) - log_z.unsqueeze(-1)).exp()  # (N, G), <= 1/min gap
    pieces = (density[:, 1:] + density[:, :-1]) / 2 * (y[:, 1:] - y[:, :-1])  # (N, G-1)
    return torch.cat([torch.zeros_like(pieces[:, :1]), pieces.cumsum(-1)], dim=-1)


def quantiles(
    scores: torch.Tensor, log_z: torch.Tensor, grid: torch.Tensor, levels: list[float]
) -> torch.Tensor:
    """Posterior quantiles (N, L) by inverting the trapezoid CDF.

    Between grid points the density is linear (as the trapezoid rule assumes), so the CDF
    is quadratic there and is inverted exactly rather than by linear interpolation.
    """
    y = grid.to(device=scores.device, dtype=torch.float64).expand(scores.shape)  # (N, G)
    density = (scores.to(torch.float64) - log_z.unsqueeze(-1)).exp()
    gaps = y[:, 1:] - y[:, :-1]  # (N, G-1)
    cum = cdf(scores, log_z, grid)  # (N, G)
    total = cum[:, -1:]
    q = torch.tensor(levels, dtype=torch.float64, device=scores.device)
    q = (q.unsqueeze(0) * total).contiguous()  # (N, L), scaled to remove rounding in `total`
    # the cell [y_lo, y_hi] whose CDF range contains q
    hi = torch.searchsorted(cum, q).clamp(1, y.shape[1] - 1)
    lo = hi - 1
    d0, d1 = density.gather(-1, lo), density.gather(-1, hi)
    rest = (q - cum.gather(-1, lo)).clamp_min(0)  # mass still needed inside the cell
    width = gaps.gather(-1, lo)
    # solve d0 t + (d1 - d0) t^2 / (2 width) = rest for t in [0, width], in the form that
    # is stable for any slope (including d1 == d0); the discriminant is >= d1^2 >= 0
    slope = (d1 - d0) / (2 * width)
    root = (d0.square() + 4 * slope * rest).clamp_min(0).sqrt()
    t = 2 * rest / (d0 + root).clamp_min(1e-300)
    return y.gather(-1, lo) + torch.minimum(t, width)


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
        log_p, log_z = log_masses(scores, grid)
        density = (scores.to(torch.float64) - log_z.unsqueeze(-1)).exp()
        return log_p.exp(), grid, cdf(scores, log_z, grid), density

    p_a, g_a, cum_a, dens_a = parts(scores_a, grid_a)
    p_b, g_b, cum_b, dens_b = parts(scores_b, grid_b)
    from_a = (p_a * cdf_at(g_a, g_b, cum_b, dens_b)).sum(-1)  # ∫ p_a F_b
    from_b = 1 - (p_b * cdf_at(g_b, g_a, cum_a, dens_a)).sum(-1)  # 1 - ∫ p_b F_a
    both = (from_a + from_b) / 2
    p = torch.where(std_a < std_b, from_a, torch.where(std_b < std_a, from_b, both))
    return p.clamp(0, 1)


def conservative(mean: torch.Tensor, std: torch.Tensor, k: float) -> torch.Tensor:
    """The uncertainty-penalised reward mean - k * std (DESIGN §1.7)."""
    return mean - k * std
