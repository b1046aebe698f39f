"""Coarse to fine: where on the grid each posterior needs head evaluations.

A shared grid fine enough for the narrowest posterior wastes most of its points on the
others: f is evaluated everywhere although the mass sits in a few units. So refinement
first evaluates a coarse shared grid (`COARSE_CELLS` + 1 points over the grid's range).
The trapezoid rule is spectrally accurate for a smooth density that decays inside the
grid once the spacing is below its std (error ~exp(-2 pi^2 std^2 / h^2)), so a row is
*settled* on the coarse grid when its std is at least `ZOOM_BELOW` cells and its
statistics agree with those of every other coarse point (spacing 2h) to `AGREE`: a
cheap a-posteriori error estimate that needs no extra evaluations.

Where the coarse grid is not enough, an error indicator per pair of coarse cells
(`window`) says where. If that region spans at most a quarter of the range (a peak),
the row gets `COARSE_CELLS` new points there: the window spans a power-of-two number of
coarse cells, each split evenly, so the merged grid (all coarse points + the new ones)
is uniform and finer than the shared grid inside the window, coarse outside, and every
coarse score is reused. Otherwise (structure all over the range, as trained heads with
a floor of mass show) the row gets the rest of the shared grid, of which the coarse
grid is a subset: the same points the plain shared-grid evaluation uses.

Integrals use end-corrected trapezoid weights (Gregory's rule, exact for cubics), so a
density that does not decay at the grid's ends (an untrained head) is integrated to
O(h^4) instead of O(h^2); where the density decays they equal the trapezoid weights.
"""

from __future__ import annotations

import torch

from ebrm.energy import posterior

COARSE_CELLS = 32  # cells of the coarse grid, and new points per unsettled row (power of 2)
ZOOM_BELOW = 2.0  # a posterior narrower than this many cells is not resolved by them
AGREE = 2e-4  # settled: mean and std on h and 2h agree to this (normalised units)
SUPPORT_NATS = 20.0  # the window holds all coarse points within this of the peak log mass
CELL_TOL = 1e-6  # a pair of coarse cells whose mass on h and 2h differs more needs points
_GREGORY = (-1 / 8, 1 / 6, -1 / 24)  # end corrections to the trapezoid weights, times h
_EVEN = posterior.EVEN_GAPS  # gaps equal to this relative tolerance count as even


def integration_log_weights(grid: torch.Tensor) -> torch.Tensor:
    """log quadrature weights (G,) or (n, G): trapezoid, end-corrected where the three
    end gaps are equal (to `_EVEN` relative) and G >= 6; float64."""
    grid = grid.to(torch.float64)
    gaps = grid[..., 1:] - grid[..., :-1]  # (..., G-1)
    w = torch.zeros_like(grid)
    w[..., :-1] += gaps / 2
    w[..., 1:] += gaps / 2
    if grid.shape[-1] >= 6:
        gregory = torch.tensor(_GREGORY, dtype=torch.float64, device=grid.device)  # (3,)
        for end, flip in ((gaps[..., :3], False), (gaps[..., -3:], True)):
            h = end[..., :1]  # (..., 1) the outermost gap
            even = ((end - h).abs() <= _EVEN * h.abs()).all(dim=-1, keepdim=True)
            fix = gregory * h * even  # (..., 3), outermost point first
            if flip:
                w[..., -3:] += fix.flip(-1)
            else:
                w[..., :3] += fix
    return w.log()


def statistics(
    scores: torch.Tensor, grid: torch.Tensor, levels: tuple[float, ...] = ()
) -> dict[str, torch.Tensor]:
    """mean, std and log Z with `integration_log_weights`, plus the `posterior.quantiles`
    named q05, q50, ... (each (n,) float64)."""
    weights = integration_log_weights(grid).to(scores.device)
    m = posterior.moments(scores.to(torch.float64), grid, log_weights=weights)
    out = {"mean": m.mean, "std": m.std, "log_z": m.log_z}
    if levels:
        qs = posterior.quantiles(scores, grid, list(levels))
        out.update({f"q{round(100 * q):02d}": qs[:, i] for i, q in enumerate(levels)})
    return out


def refined_grid(grid: torch.Tensor) -> tuple[torch.Tensor, int] | None:
    """The shared grid for coarse-to-fine refinement and the coarse grid's stride in it.

    The shared grid keeps `grid`'s range with C * stride + 1 points (C = COARSE_CELLS,
    stride = ceil((G - 1) / C), so at least G points: 128 becomes 129), so the coarse grid
    is every stride-th point and a row that needs the whole grid reuses its coarse
    scores. None when `grid` is not evenly spaced or too small (G <= 2 (C + 1)) for the
    scheme to save evaluations.
    """
    size = grid.numel()
    gaps = grid[1:] - grid[:-1]
    if size <= 2 * (COARSE_CELLS + 1) or bool(((gaps - gaps[0]).abs() > 1e-4 * gaps[0]).any()):
        return None
    stride = -(-(size - 1) // COARSE_CELLS)
    lo, hi = float(grid[0]), float(grid[-1])
    fine = torch.linspace(lo, hi, COARSE_CELLS * stride + 1, dtype=grid.dtype, device=grid.device)
    return fine, stride


def settled(
    scores: torch.Tensor, coarse: torch.Tensor, stats: dict[str, torch.Tensor]
) -> torch.Tensor:
    """(n,) bool: rows whose coarse statistics are already accurate (see the module doc)."""
    spacing = float(coarse[1] - coarse[0])
    half = statistics(scores[:, ::2], coarse[::2])
    agree = ((stats["mean"] - half["mean"]).abs() <= AGREE) & (
        (stats["std"] - half["std"]).abs() <= AGREE
    )
    return agree & (stats["std"] >= ZOOM_BELOW * spacing)


def window(
    scores: torch.Tensor, coarse: torch.Tensor, stats: dict[str, torch.Tensor]
) -> tuple[torch.Tensor, torch.Tensor]:
    """First and last coarse index (n,) of the region that needs finer points.

    Each pair of coarse cells is integrated twice, by the trapezoid on h and on 2h; the
    difference, weighted by how much a mass error there moves the mean and the std,
    estimates the pair's share of the error. The window spans the pairs whose share
    exceeds AGREE / (number of pairs): a sharp peak on a smooth floor gets a window
    around the peak only. Rows with no such pair (narrow but smooth) get the region
    within `SUPPORT_NATS` of the peak, plus a cell each side, instead.
    """
    cells = coarse.numel() - 1
    spacing = coarse[1] - coarse[0]
    f = scores.to(torch.float64)
    d = (f - torch.logsumexp(f, dim=1, keepdim=True)).exp() / spacing  # (n, C+1), ~ density
    on_h = spacing / 2 * (d[:, 0:-2:2] + 2 * d[:, 1:-1:2] + d[:, 2::2])  # (n, C/2) pair mass
    on_2h = spacing * (d[:, 0:-2:2] + d[:, 2::2])
    lever = (coarse[1:-1:2].to(torch.float64) - stats["mean"].unsqueeze(1)).abs()  # (n, C/2)
    spread = stats["std"].clamp_min(float(spacing)).unsqueeze(1)
    share = (on_h - on_2h).abs() * (1 + lever + lever.square() / (2 * spread))
    flagged = share > AGREE / (cells // 2)  # (n, C/2)
    pairs = torch.arange(cells // 2, device=scores.device)
    first = torch.where(flagged, 2 * pairs, cells).min(dim=1).values
    last = torch.where(flagged, 2 * pairs + 2, 0).max(dim=1).values
    log_w = f + posterior.trapezoid_log_weights(coarse)
    inside = log_w >= log_w.max(dim=1, keepdim=True).values - SUPPORT_NATS  # (n, C + 1)
    index = torch.arange(cells + 1, device=scores.device)
    none = ~flagged.any(dim=1)
    first = torch.where(none, torch.where(inside, index, cells).min(dim=1).values - 1, first)
    last = torch.where(none, torch.where(inside, index, 0).max(dim=1).values + 1, last)
    return first.clamp(0, cells), last.clamp(0, cells)


def window_cells(first: torch.Tensor, last: torch.Tensor, cells: int) -> torch.Tensor:
    """The window's width in coarse cells: the next power of two >= last - first (n,)."""
    need = (last - first).clamp_min(1)
    width = torch.exp2(torch.ceil(torch.log2(need.double()))).round().long()
    return width.clamp_max(cells)


def window_points(
    coarse: torch.Tensor, first: torch.Tensor, last: torch.Tensor, count: int
) -> torch.Tensor:
    """`count` new points per row, evenly splitting the coarse cells of its window.

    Args:
        coarse: (C + 1,) the coarse grid (C = COARSE_CELLS).
        first, last: (n,) the window's coarse indices (`window`).
        count: new points per row, a multiple of C.

    Returns:
        (n, count) points, none on a coarse point, so merged with the coarse grid they
        give a strictly increasing grid, uniform inside the window.
    """
    cells = coarse.numel() - 1
    width = window_cells(first, last, cells)
    need = (last - first).clamp_min(1)
    start = torch.minimum((first - (width - need) // 2).clamp_min(0), cells - width)  # centred
    per_cell = (count // width).unsqueeze(1)  # (n, 1) new points per window cell
    t = torch.arange(count, device=coarse.device)  # (count,)
    cell = start.unsqueeze(1) + t // per_cell  # (n, count) which coarse cell
    frac = (t % per_cell + 1) / (per_cell + 1)  # (n, count) in (0, 1)
    spacing = coarse[1] - coarse[0]
    return coarse[0] + (cell.to(coarse.dtype) + frac.to(coarse.dtype)) * spacing


def merge(
    coarse: torch.Tensor, coarse_scores: torch.Tensor, points: torch.Tensor, scores: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-row grids (n, C1 + C) and scores: the coarse grid and new points, sorted."""
    grid = torch.cat([coarse.expand(coarse_scores.shape), points.to(coarse.dtype)], dim=1)
    merged, order = grid.sort(dim=1)
    values = torch.cat([coarse_scores, scores.to(coarse_scores.dtype)], dim=1)
    return merged, values.gather(1, order)
