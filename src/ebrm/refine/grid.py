"""Grid refinement: the whole posterior p(y | e) ∝ exp f(e, y) on a shared 1-D grid.

Because y is one-dimensional, f can be evaluated on a dense grid in one batched,
autograd-free pass (DESIGN §1.6). The grid is shared by all responses, so the reward
branch `project_rewards(grid)` runs once; per (response, grid point) only the joint
layers after the first one run. The argmax is then polished by a deterministic
golden-section search between its grid neighbours and one parabolic step. Posteriors
narrower than ~2 grid cells are re-evaluated on zoomed local grids (coarse to fine), so
the statistics stay accurate for sharp heads without a finer shared grid.

Cost per response: G grid points + ~14 polish points (+ G per zoom level for narrow
rows), against ~2 passes per iteration (up to 50) for paper mode.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, fields

import torch
from torch import nn

from ebrm._device import resolve_dtype
from ebrm._progress import tqdm
from ebrm.energy.posterior import check_grid, half_width
from ebrm.refine import _adaptive, uncertainty
from ebrm.refine._polish import polish_mode
from ebrm.refine._scoring import joint_scores as _joint_scores
from ebrm.refine._scoring import low_precision_layers as _low_precision_layers
from ebrm.refine._scoring import scores_on_grid as _scores_on_grid
from ebrm.refine._util import check_embeddings, eval_mode, head_placement

logger = logging.getLogger(__name__)

QUANTILE_LEVELS = (0.05, 0.5, 0.95)
ZOOM_CELLS = 12.0  # most half-width, in grid cells, of the local grid for narrow posteriors
_ZOOM_BELOW_POSTERIOR = 1.5  # grid_posterior zooms rows narrower than this many cells
ZOOM_STDS = 8.0  # its half-width in (estimated) posterior stds, at least 2 cells


@dataclass(frozen=True)
class Posterior:
    """Statistics of p(y | e) per response, each (N,) float32 in normalised units."""

    mode: torch.Tensor  # argmax of f (grid argmax, polished)
    mode_score: torch.Tensor  # f(e, mode)
    mean: torch.Tensor
    std: torch.Tensor  # of the mass on the grid: grows with the grid when f has a floor
    spread: torch.Tensor  # half-width where f >= f(mode) - 1/2 (= std for a Gaussian)
    q05: torch.Tensor
    q50: torch.Tensor
    q95: torch.Tensor
    log_z: torch.Tensor  # log ∫ exp f(e, y) dy over the grid's range

    def __len__(self) -> int:
        return int(self.mean.shape[0])


def _default_grid(grid: torch.Tensor | None) -> torch.Tensor:
    if grid is None:
        from ebrm.refine.config import RefineConfig

        return RefineConfig().grid()
    return check_grid(grid)


def grid_scores(
    head: nn.Module,
    embeddings: torch.Tensor,
    *,
    grid: torch.Tensor | None = None,
    row_chunk: int = 64,
    grid_chunk: int = 256,
) -> torch.Tensor:
    """f(e, y) for every response and grid point, no autograd, dropout off: (N, G) float32."""
    grid = _default_grid(grid)
    embeddings = check_embeddings(head, embeddings)
    device, dtype = head_placement(head)
    with eval_mode(head), torch.no_grad():
        grid_part = head.project_rewards(grid.to(device=device, dtype=dtype))  # (G, H1), once
        out = [
            _scores_on_grid(
                head, head.project_embeddings(embeddings[i : i + row_chunk]), grid_part, grid_chunk
            ).float()
            for i in range(0, embeddings.shape[0], row_chunk)
        ]
    if not out:
        return torch.zeros(0, grid.numel())
    return torch.cat(out).cpu()


@dataclass
class _Resolved:
    """One group of rows' posteriors: per-row grids and f on them, plus the statistics."""

    grid: torch.Tensor  # (n, G) the rows' grids (shared, merged coarse-to-fine, or zoomed)
    scores: torch.Tensor  # (n, G) f on those grids
    stats: dict[str, torch.Tensor]  # mean, std, spread, q05, q50, q95, log_z (n,) float64
    mode: torch.Tensor | None = None  # (n,) once polished
    mode_score: torch.Tensor | None = None  # (n,)


def _statistics(scores: torch.Tensor, grid: torch.Tensor) -> dict[str, torch.Tensor]:
    """mean, std, quantiles and log Z (each (n,)) from f on a (G,) or (n, G) grid."""
    return _adaptive.statistics(scores, grid, QUANTILE_LEVELS)


def _zoom_narrow(
    head: nn.Module,
    emb_part: torch.Tensor,
    res: _Resolved,
    levels: int,
    below: float = _adaptive.ZOOM_BELOW,
) -> None:
    """Re-resolve rows too narrow for their grid on local grids of the same size.

    A posterior whose std is below ~2 grid cells at its peak puts its mass on a few
    grid points, so mean, quantiles and P(a > b) would be off by up to half a cell.
    Such rows get G evenly spaced points over peak ± ZOOM_STDS std (between 2 and
    ZOOM_CELLS cells: an unresolved std is only roughly known) on a per-row grid (the
    reward branch runs per row), repeated while the posterior is still narrower than two
    new cells, at most `levels` times. Updates `res` in place.
    """
    n, size = res.grid.shape
    peak = res.grid.gather(1, res.scores.argmax(dim=1, keepdim=True))  # (n, 1)
    k = torch.searchsorted(res.grid, peak).squeeze(1).clamp(1, size - 1)
    spacing = (res.grid.gather(1, k[:, None]) - res.grid.gather(1, (k - 1)[:, None]))[:, 0]
    spacing = spacing.to(torch.float64)  # (n,) cell width at the peak
    offsets = torch.linspace(-1, 1, size, dtype=res.grid.dtype, device=res.grid.device)
    rows = (res.stats["std"] < below * spacing).nonzero().flatten()
    for _ in range(levels):
        if rows.numel() == 0:
            return
        half = (ZOOM_STDS * res.stats["std"][rows]).clamp(
            2 * spacing[rows], ZOOM_CELLS * spacing[rows]
        )
        centre = res.grid[rows].gather(1, res.scores[rows].argmax(dim=1, keepdim=True))
        local = centre + half.to(res.grid.dtype).unsqueeze(1) * offsets
        scores = _joint_scores(head, emb_part[rows], head.project_rewards(local))  # (r, G)
        local_stats = _statistics(scores, local)
        res.grid[rows], res.scores[rows] = local, scores.to(res.scores.dtype)
        for name, value in local_stats.items():
            res.stats[name][rows] = value
        spacing[rows] = 2 * half / (size - 1)
        rows = rows[local_stats["std"] < below * spacing[rows]]


def _finish(
    head: nn.Module,
    emb_part: torch.Tensor,
    grid: torch.Tensor,
    scores: torch.Tensor,
    *,
    polish_steps: int,
    zoom_levels: int,
    rescore: bool,
    zoom_below: float = _adaptive.ZOOM_BELOW,
) -> _Resolved:
    """Statistics of f on a (G,) or (n, G) grid, narrow rows zoomed, the mode polished."""
    res = _Resolved(grid=grid.expand(scores.shape).clone(), scores=scores, stats={})
    res.stats = _statistics(scores, res.grid)
    _zoom_narrow(head, emb_part, res, zoom_levels, zoom_below)
    res.mode, res.mode_score = polish_mode(
        head, emb_part, res.grid, res.scores, polish_steps, rescore=rescore
    )
    res.stats["spread"] = half_width(res.scores, res.grid, res.mode_score)
    return res


def _resolve(
    head: nn.Module,
    emb_part: torch.Tensor,
    grid: torch.Tensor,
    grid_part: torch.Tensor,
    *,
    grid_chunk: int,
    low: list[tuple[torch.Tensor, torch.Tensor]] | None,
    polish_steps: int,
    zoom_levels: int,
) -> _Resolved:
    """Posteriors of one chunk of projected embeddings (n, H1) on the whole grid."""
    scores = _scores_on_grid(head, emb_part, grid_part, grid_chunk, low)  # (n, G)
    options = dict(polish_steps=polish_steps, zoom_levels=zoom_levels, rescore=low is not None)
    return _finish(head, emb_part, grid, scores, **options)


def _resolve_coarse_to_fine(
    head: nn.Module,
    emb_part: torch.Tensor,
    grid: torch.Tensor,
    grid_part: torch.Tensor,
    stride: int,
    *,
    grid_chunk: int,
    low: list[tuple[torch.Tensor, torch.Tensor]] | None,
    polish_steps: int,
    zoom_levels: int,
) -> list[tuple[torch.Tensor, _Resolved]]:
    """(rows, their posteriors) of one chunk, group by group: f first on every `stride`-th
    point of the shared grid, then more points only where a row needs them
    (`ebrm.refine._adaptive`)."""
    coarse = grid[::stride]
    scores = _scores_on_grid(head, emb_part, grid_part[::stride], grid_chunk, low)  # (n, C+1)
    stats = _adaptive.statistics(scores, coarse)
    cells = coarse.numel() - 1
    # 0: settled on the coarse grid; 1: C new points in a window of <= C/4 coarse cells;
    # 2: the rest of the shared grid
    first, last = _adaptive.window(scores, coarse, stats)
    wide = _adaptive.window_cells(first, last, cells) > cells // 4
    group = torch.where(_adaptive.settled(scores, coarse, stats), 0, 1 + wide.long())
    options = dict(polish_steps=polish_steps, zoom_levels=zoom_levels, rescore=low is not None)
    rest = (torch.arange(grid.numel(), device=grid.device) % stride != 0).nonzero().flatten()
    groups = []
    for g in range(3):
        rows = (group == g).nonzero().flatten()
        if rows.numel() == 0:
            continue
        part, on, values = emb_part[rows], coarse, scores[rows]
        if g == 1:
            points = _adaptive.window_points(coarse, first[rows], last[rows], cells)
            new = _joint_scores(head, part, head.project_rewards(points))  # full precision
            on, values = _adaptive.merge(coarse, values, points, new)
        elif g == 2:
            on, values = grid, values.new_empty(rows.numel(), grid.numel())
            values[:, ::stride] = scores[rows]
            values[:, rest] = _scores_on_grid(head, part, grid_part[rest], grid_chunk, low)
        # moments are exact to ~exp(-2 pi^2 1.5^2) at 1.5 cells per std, and the quantiles'
        # fourth-order CDF is fine there too; p_better's trapezoid CDFs zoom below 2 cells
        groups.append(
            (rows, _finish(head, part, on, values, zoom_below=_ZOOM_BELOW_POSTERIOR, **options))
        )
    return groups


def _prepare(
    head: nn.Module, grid: torch.Tensor, compute_dtype: str | torch.dtype, coarse_to_fine: bool
) -> tuple[torch.Tensor, int | None, list[tuple[torch.Tensor, torch.Tensor]] | None]:
    """The grid f is evaluated on (on the head's device and dtype), the coarse grid's stride
    in it (None: no coarse-to-fine) and the low-precision layers (None: full precision)."""
    device, dtype = head_placement(head)
    grid_dev = grid.to(device=device, dtype=dtype)
    adaptive = _adaptive.refined_grid(grid_dev) if coarse_to_fine else None
    shared, stride = (grid_dev, None) if adaptive is None else adaptive
    return shared, stride, _low_precision_layers(head, resolve_dtype(compute_dtype))


def _resolve_chunk(
    head: nn.Module,
    emb_part: torch.Tensor,
    shared: torch.Tensor,
    shared_part: torch.Tensor,
    stride: int | None,
    **options,
) -> list[tuple[torch.Tensor, _Resolved]]:
    """(rows, their posteriors) of one chunk of projected embeddings (n, H1), in groups
    of rows resolved the same way; no autograd."""
    if stride is None:
        rows = torch.arange(emb_part.shape[0], device=emb_part.device)
        return [(rows, _resolve(head, emb_part, shared, shared_part, **options))]
    return _resolve_coarse_to_fine(head, emb_part, shared, shared_part, stride, **options)


def grid_posterior(
    head: nn.Module,
    embeddings: torch.Tensor,
    *,
    grid: torch.Tensor | None = None,
    polish_steps: int = 8,
    zoom_levels: int = 4,
    row_chunk: int = 64,
    grid_chunk: int = 256,
    compute_dtype: str | torch.dtype = "float32",
    coarse_to_fine: bool = True,
    progress: bool = False,
) -> Posterior:
    """Posterior statistics of p(y | e) ∝ exp f(e, y) on a shared grid.

    Deterministic, batched, autograd-free; dropout is off during the call.

    Args:
        head: an `EnergyHead` (or any module with project_embeddings / project_rewards /
            forward_projected).
        embeddings: (N, D) base-RM embeddings.
        grid: (G,) strictly increasing points in normalised units; default
            `RefineConfig().grid()`. It should cover the training rewards with a margin.
        polish_steps: most parabolic steps refining the best grid point (each one head
            evaluation per response; they stop once every bracket is below 1e-6;
            0 = grid argmax only).
        zoom_levels: how often a posterior narrower than the grid spacing may be
            re-evaluated on a finer local grid (0 = never).
        coarse_to_fine: evaluate every few points of the grid first (33 points) and the
            rest only where a posterior needs them (`ebrm.refine._adaptive`): 33, 65 or G
            head evaluations per response instead of G. Used for evenly spaced grids of
            G > 66 points, rounded up to 32k + 1 points (128 -> 129); False evaluates
            every point of `grid` as given.
        row_chunk, grid_chunk: responses and grid points per pass; peak memory is about
            row_chunk * grid_chunk * (first joint width) * 4 bytes.
        compute_dtype: dtype of the hidden joint layers on the shared grid; "bfloat16" is
            faster on CPUs with AVX-512 BF16 but perturbs f by ~1e-2 (the mode's f,
            polish and narrow-posterior zoom stay in full precision).
        progress: show a progress bar over row chunks.

    Returns:
        A `Posterior` of (N,) float32 CPU tensors.

    Raises:
        IncompatibleArtifactError: embedding dimension differs from the head's.
        DataFormatError: NaN/inf embeddings.
    """
    grid = _default_grid(grid)
    embeddings = check_embeddings(head, embeddings)
    shared, stride, low = _prepare(head, grid, compute_dtype, coarse_to_fine)
    n = embeddings.shape[0]
    columns: dict[str, list[torch.Tensor]] = {f.name: [] for f in fields(Posterior)}
    with eval_mode(head), torch.no_grad():
        shared_part = head.project_rewards(shared)  # (G, H1): the reward branch runs once
        options = dict(
            grid_chunk=grid_chunk, low=low, polish_steps=polish_steps, zoom_levels=zoom_levels
        )
        starts = range(0, n, row_chunk)
        for start in tqdm(starts, desc="grid refine", disable=not progress, unit="chunk"):
            emb_part = head.project_embeddings(embeddings[start : start + row_chunk])  # (n, H1)
            values: dict[str, torch.Tensor] = {}
            for rows, res in _resolve_chunk(head, emb_part, shared, shared_part, stride, **options):
                out = {"mode": res.mode, "mode_score": res.mode_score, **res.stats}
                for name, value in out.items():
                    if name not in values:
                        values[name] = value.new_empty(emb_part.shape[0])
                    values[name][rows] = value
            for name, value in values.items():
                columns[name].append(value.float().cpu())
    return Posterior(
        **{name: torch.cat(parts) if parts else torch.zeros(0) for name, parts in columns.items()}
    )


def p_better(
    head: nn.Module,
    emb_a: torch.Tensor,
    emb_b: torch.Tensor,
    *,
    grid: torch.Tensor | None = None,
    polish_steps: int = 8,
    zoom_levels: int = 4,
    row_chunk: int = 64,
    grid_chunk: int = 256,
    compute_dtype: str | torch.dtype = "float32",
) -> torch.Tensor:
    """P(y_a > y_b) (N,) for independent posteriors of paired responses a[i], b[i].

    Each posterior is resolved as in `grid_posterior` (narrow ones on zoomed local
    grids); p_better(a, b) + p_better(b, a) = 1.

    Raises:
        DataFormatError: if emb_a and emb_b do not have the same number of rows.
    """
    from ebrm.errors import DataFormatError

    grid = _default_grid(grid)
    emb_a = check_embeddings(head, emb_a, name="emb_a")
    emb_b = check_embeddings(head, emb_b, name="emb_b")
    if emb_a.shape[0] != emb_b.shape[0]:
        raise DataFormatError(
            f"p_better compares rows pairwise, so emb_a and emb_b need the same number of rows; "
            f"got {emb_a.shape[0]} and {emb_b.shape[0]}"
        )
    device, dtype = head_placement(head)
    grid_dev = grid.to(device=device, dtype=dtype)
    out = []
    with eval_mode(head), torch.no_grad():
        grid_part = head.project_rewards(grid_dev)
        low = _low_precision_layers(head, resolve_dtype(compute_dtype))
        options = dict(
            grid_chunk=grid_chunk, low=low, polish_steps=polish_steps, zoom_levels=zoom_levels
        )
        for start in range(0, emb_a.shape[0], row_chunk):
            sides = []
            for emb in (emb_a, emb_b):
                emb_part = head.project_embeddings(emb[start : start + row_chunk])
                res = _resolve(head, emb_part, grid_dev, grid_part, **options)
                sides += [res.scores, res.grid, res.stats["std"]]
            out.append(uncertainty.prob_greater(*sides).float().cpu())
    return torch.cat(out) if out else torch.zeros(0)
