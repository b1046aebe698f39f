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

from ebrm.energy.posterior import check_grid, trapezoid_log_weights  # noqa: F401 - shared; check_grid re-exported


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


def conservative(mean: torch.Tensor, spread: torch.Tensor, k: float) -> torch.Tensor:
    """The uncertainty-penalised reward mean - k * spread (DESIGN §1.7)."""
    return mean - k * spread


#: f drops this far below its maximum at the edges of the interval `half_width` measures
#: (exp(-1/2) of the peak density: one standard deviation from the mean of a Gaussian)
HALF_WIDTH_DROP = 0.5


def half_width(scores: torch.Tensor, grid: torch.Tensor, peak: torch.Tensor) -> torch.Tensor:
    """A spread of p(y | e) that belongs to the density, not to the grid: (N,) float64.

    Half the width of the interval around the mode where f >= f(mode) - 1/2, i.e. where
    the density is at least exp(-1/2) of its peak; for a Gaussian this is exactly its std.
    The energy head's f flattens to a constant far from the training rewards (its reward
    branch saturates), so p(y | e) keeps a thin floor of mass over the whole grid and its
    std grows with the grid's width. This interval only looks at where f crosses the
    level, so widening the grid leaves it unchanged (as long as the crossings lie inside).
    Each crossing solves the parabola through the two grid points around it and the next
    one towards the mode (exact for a Gaussian on any grid, however coarse); a side that
    never drops below the level is cut at the grid's end.

    Args:
        scores: (N, G) f on the grid.
        grid: (G,) or (N, G) strictly increasing.
        peak: (N,) f at the (polished) mode, >= every score of its row.
    """
    s = scores.to(torch.float64)
    y = grid.to(device=s.device, dtype=torch.float64).expand(s.shape)
    size = s.shape[1]
    level = (torch.maximum(peak.to(s), s.max(dim=1).values) - HALF_WIDTH_DROP).unsqueeze(1)
    k = s.argmax(dim=1, keepdim=True)  # (N, 1)
    idx = torch.arange(size, device=s.device).expand(s.shape)
    below = s < level
    # the last point below the level left of the argmax, the first one right of it
    lo = torch.where(below & (idx < k), idx, -1).max(dim=1, keepdim=True).values
    hi = torch.where(below & (idx > k), idx, size).min(dim=1, keepdim=True).values
    left = torch.where(lo < 0, y[:, :1], _crossing(s, y, level, lo, 1))
    right = torch.where(hi >= size, y[:, -1:], _crossing(s, y, level, hi, -1))
    return ((right - left) / 2).squeeze(1)


def _crossing(s, y, level, out, step) -> torch.Tensor:
    """Where f = level between grid point `out` (below) and `out + step` (at or above),
    from the parabola through those two and `out + 2 step` (the line through the two
    where there is no third point). (N, 1)."""
    size = s.shape[1]
    i0 = out.clamp(0, size - 1)
    i1 = (out + step).clamp(0, size - 1)
    i2 = (out + 2 * step).clamp(0, size - 1)
    y0, y1, y2 = (y.gather(1, i) for i in (i0, i1, i2))
    f0, f1, f2 = (s.gather(1, i) for i in (i0, i1, i2))
    # Newton form through (y0, f0), (y1, f1), (y2, f2): f = f0 + b (x - y0) + c (x - y0)(x - y1)
    b = (f1 - f0) / (y1 - y0)
    c = ((f2 - f1) / (y2 - y1) - b) / (y2 - y0)
    c = torch.where((i2 != i1) & torch.isfinite(c), c, torch.zeros_like(c))
    # solve c t^2 + (b - c (y1 - y0)) t + (f0 - level) = 0 for t = x - y0 in the cell
    lin = b - c * (y1 - y0)
    const = f0 - level  # < 0
    disc = (lin.square() - 4 * c * const).clamp_min(0)
    # the root continuous in c as c -> 0 (the line's root): 2 const / (-lin -+ sqrt(disc))
    sign = torch.where(lin >= 0, -1.0, 1.0)
    denom = -lin + sign * disc.sqrt()
    t = torch.where(denom != 0, 2 * const / denom, torch.zeros_like(denom))
    t_line = torch.where(b != 0, -const / b, torch.zeros_like(b))
    lo_t, hi_t = (
        torch.minimum(torch.zeros_like(y0), y1 - y0),
        torch.maximum(torch.zeros_like(y0), y1 - y0),
    )
    inside = (t >= lo_t) & (t <= hi_t) & torch.isfinite(t)
    t = torch.where(inside, t, t_line.clamp(lo_t, hi_t))
    return y0 + t
