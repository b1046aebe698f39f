"""The posterior p(y | e) ∝ exp f(e, y) on a reward grid: its moments, defined once.

Everything that summarises the grid posterior calls the functions here: `moments` (mean,
std and log Z), `quantiles` and `half_width` (the spread). They are plain torch arithmetic
on f evaluated at given grid points, so autograd flows through them to f (and through it to
the head's parameters and the embeddings; the tests check the gradients of `moments` and
`half_width` against finite differences). Their users differ only in where f is evaluated and
in the quadrature weights: training (the `nce+bt` objective, differentiably, and checkpoint
selection) uses the trapezoid rule on a shared grid; `ebrm.refine` adds polished modes,
zoomed grids for narrow posteriors and end-corrected weights, and the over-optimisation
harness differentiates refinement's result by evaluating f again on refinement's own
grids (`ebrm.refine.differentiable`).

Integrals are done in log space: log Z = logsumexp(f + log w) with w the quadrature
weights, so no exp(f) ever overflows. The trapezoid rule is spectrally accurate for smooth
densities that decay inside the grid (moments and log Z of a Gaussian are exact to float
precision once the spacing is below its std).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ebrm.energy.head import EnergyHead
from ebrm.errors import ConfigError, DataFormatError


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


def trapezoid_log_weights(grid: torch.Tensor) -> torch.Tensor:
    """log trapezoid weights of a strictly increasing grid, (G,) or per row (N, G)."""
    grid = grid.to(torch.float64)
    gaps = grid[..., 1:] - grid[..., :-1]  # (..., G-1)
    weights = torch.zeros_like(grid)
    weights[..., :-1] += gaps / 2
    weights[..., 1:] += gaps / 2
    return weights.log()


@dataclass(frozen=True)
class Moments:
    """Moments of p(y | e) on a grid, in the dtype of the scores they came from."""

    mean: torch.Tensor  # (N,)
    std: torch.Tensor  # (N,) of the mass on the grid: grows with the grid when f has a floor
    log_z: torch.Tensor  # (N,) log ∫ exp f(e, y) dy over the grid's range
    masses: torch.Tensor  # (N, G) normalised probability masses of the grid points


def moments(
    scores: torch.Tensor, grid: torch.Tensor, *, log_weights: torch.Tensor | None = None
) -> Moments:
    """Posterior mean, std, log Z and masses from f on a grid; differentiable in `scores`.

    Computed in `scores`' dtype (cast them to float64 first for refinement's accuracy).

    Args:
        scores: (N, G) f(e, y) on the grid.
        grid: (G,) shared or (N, G) per row, strictly increasing.
        log_weights: (G,) or (N, G) log quadrature weights; default the trapezoid rule's
            (`trapezoid_log_weights`).

    Example:
        >>> y = torch.linspace(-8, 8, 65, dtype=torch.float64)
        >>> m = moments(-(y - 1).square().unsqueeze(0) / 2, y)  # N(1, 1)
        >>> round(float(m.mean), 6), round(float(m.std), 6)
        (1.0, 1.0)
    """
    if log_weights is None:
        log_weights = trapezoid_log_weights(grid)
    logits = scores + log_weights.to(device=scores.device, dtype=scores.dtype)  # (N, G)
    log_z = torch.logsumexp(logits, dim=-1)  # (N,)
    p = torch.softmax(logits, dim=-1)  # (N, G)
    y = grid.to(device=scores.device, dtype=scores.dtype)
    mean = p @ y if y.ndim == 1 else (p * y).sum(-1)
    var = (p * (y - mean.unsqueeze(-1)).square()).sum(-1)
    return Moments(mean=mean, std=var.clamp_min(0).sqrt(), log_z=log_z, masses=p)


def grid_range(rewards: torch.Tensor, *, margin: float | None = None) -> tuple[float, float]:
    """(low, high) of a reward grid covering normalised training rewards plus a margin.

    Args:
        rewards: (N,) normalised rewards of the training responses.
        margin: added below the minimum and above the maximum; default one standard
            deviation of `rewards` (4 units at scale 4, at least 1), about one NCE noise
            sigma, so the grid spans where the head was trained but not its untrained tails.

    Raises:
        DataFormatError: if `rewards` is empty or not finite.
    """
    rewards = torch.as_tensor(rewards, dtype=torch.float64).reshape(-1)
    if rewards.numel() == 0 or not torch.isfinite(rewards).all():
        raise DataFormatError("a reward grid needs a non-empty tensor of finite rewards")
    if margin is None:
        margin = max(float(rewards.std(unbiased=False)), 1.0)
    return float(rewards.min()) - margin, float(rewards.max()) + margin


def posterior_mean_projected(
    head: EnergyHead, embedding_part: torch.Tensor, grid: torch.Tensor
) -> torch.Tensor:
    """Differentiable posterior mean E[y | e] (B,) from already projected embeddings.

    softmax over G of (f + log trapezoid weight), dotted with the grid. Taking `W_e e` from
    `head.project_embeddings` lets an objective share it with its NCE+ term.

    Args:
        embedding_part: (B, H1) from `head.project_embeddings`.
        grid: (G,) strictly increasing reward values (normalised units), on the head's device.
    """
    scores = head.forward_projected(embedding_part, head.project_rewards(grid))  # (B, G)
    return moments(scores, grid).mean


def posterior_mean(head: EnergyHead, embeddings: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """Differentiable posterior mean E[y | e] on the grid (N,), for training objectives.

    Gradients flow to the head's parameters (and to `embeddings` if they require grad). The
    head's current mode is used (dropout stays on in training mode). Memory: N * G * H1.

    Raises:
        ConfigError: the grid is not 1-D, finite and strictly increasing with >= 3 points.
    """
    grid = check_grid(grid)
    param = next(head.parameters())
    grid = grid.to(device=param.device, dtype=param.dtype)
    emb_part = head.project_embeddings(embeddings.to(device=param.device, dtype=param.dtype))
    return posterior_mean_projected(head, emb_part, grid)


@torch.no_grad()
def grid_summaries(
    head: EnergyHead, embeddings: torch.Tensor, grid: torch.Tensor, *, row_chunk: int = 256
) -> tuple[torch.Tensor, torch.Tensor]:
    """Posterior mean and grid mode (argmax of f on the grid) of (N, D) embeddings, (N,) each.

    What the trainer scores validation pairs with; the head's current mode is used (call it
    in eval mode). Unlike `ebrm.refine.grid_posterior`, narrow posteriors are not zoomed
    (the mean of a smooth posterior is accurate on the grid once its std exceeds about half
    a cell, and checkpoint selection only compares pairs) and the mode is refined by one
    parabolic step instead of a golden-section search (enough to break grid-cell ties).
    """
    param = next(head.parameters())
    grid = grid.to(device=param.device, dtype=param.dtype)
    grid_part = head.project_rewards(grid)  # (G, H1), shared by every row
    log_w = trapezoid_log_weights(grid)  # once for every chunk
    means, modes = [], []
    for start in range(0, embeddings.shape[0], row_chunk):
        emb = embeddings[start : start + row_chunk].to(device=param.device, dtype=param.dtype)
        scores = head.forward_projected(head.project_embeddings(emb), grid_part)  # (B, G)
        means.append(moments(scores, grid, log_weights=log_w).mean.float().cpu())
        modes.append(_parabolic_argmax(scores, grid).float().cpu())
    if not means:
        return torch.zeros(0), torch.zeros(0)
    return torch.cat(means), torch.cat(modes)


def _parabolic_argmax(scores: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """The vertex of the parabola through the grid argmax and its neighbours, (B,).

    Clamped to the neighbours' span; the grid point itself at the ends of the grid.
    """
    index = scores.argmax(dim=-1)  # (B,)
    mid = index.clamp(1, grid.numel() - 2)
    f0, f1, f2 = (scores.gather(1, (mid + k).unsqueeze(1)).squeeze(1) for k in (-1, 0, 1))
    x0, x1, x2 = grid[mid - 1], grid[mid], grid[mid + 1]
    num = (x1 - x0).square() * (f1 - f2) - (x1 - x2).square() * (f1 - f0)
    den = (x1 - x0) * (f1 - f2) - (x1 - x2) * (f1 - f0)
    vertex = x1 - 0.5 * num / den
    vertex = torch.where(torch.isfinite(vertex), vertex, grid[index])
    vertex = torch.minimum(torch.maximum(vertex, x0), x2)
    at_end = (index == 0) | (index == grid.numel() - 1)
    return torch.where(at_end, grid[index], vertex)


#: grid gaps equal to this relative tolerance count as even (a float32 linspace)
EVEN_GAPS = 1e-4


def quantiles(scores: torch.Tensor, grid: torch.Tensor, levels: list[float]) -> torch.Tensor:
    """Posterior quantiles (N, L) from a fourth-order CDF; float64.

    The trapezoid CDF is O(h^2); here each cell's mass is the integral of the cubic
    through its four nearest points, h (-d0 + 13 d1 + 13 d2 - d3) / 24, where those are
    evenly spaced and the correction to the trapezoid is small (else the trapezoid), so
    the CDF at the grid points is O(h^4) where the density is resolved. Inside the crossing
    cell the density is taken as linear, as the trapezoid rule does, with its mass scaled
    to the cell's corrected mass, so the quadratic CDF there is inverted exactly.

    Args:
        scores: (N, G) f on the grid.
        grid: (G,) or (N, G) strictly increasing.
        levels: probabilities in [0, 1].
    """
    y = grid.to(device=scores.device, dtype=torch.float64).expand(scores.shape)  # (N, G)
    f = scores.to(torch.float64)
    d = (f - f.max(dim=-1, keepdim=True).values).exp()  # (N, G) unnormalised density
    h = y[:, 1:] - y[:, :-1]  # (N, G-1)
    trapezoid = h * (d[:, 1:] + d[:, :-1]) / 2  # (N, G-1) cell masses
    correction = torch.zeros_like(trapezoid)
    if d.shape[1] >= 4:
        even = ((h[:, :-2] - h[:, 1:-1]).abs() <= EVEN_GAPS * h[:, 1:-1]) & (
            (h[:, 2:] - h[:, 1:-1]).abs() <= EVEN_GAPS * h[:, 1:-1]
        )  # (N, G-3): cells 1..G-3 with both neighbours of the same width
        fix = -h[:, 1:-1] * (d[:, :-3] - d[:, 1:-2] - d[:, 2:-1] + d[:, 3:]) / 24
        # only where the density is smooth on the grid's scale: across an unresolved
        # peak the cubic overshoots, and the trapezoid is the safer of the two
        smooth = even & (fix.abs() <= 0.25 * trapezoid[:, 1:-1])
        correction[:, 1:-1] = torch.where(smooth, fix, 0.0)
    cell = (trapezoid + correction).clamp_min(0)
    cum = torch.cat([torch.zeros_like(cell[:, :1]), cell.cumsum(-1)], dim=-1)  # (N, G)
    q = torch.tensor(levels, dtype=torch.float64, device=scores.device)
    target = (q.unsqueeze(0) * cum[:, -1:]).contiguous()  # (N, L)
    hi = torch.searchsorted(cum.contiguous(), target).clamp(1, y.shape[1] - 1)
    lo = hi - 1
    d0, d1, width = d.gather(-1, lo), d.gather(-1, hi), h.gather(-1, lo)
    # the mass still needed, in the linear model's units (its cell mass is the trapezoid)
    scale = trapezoid.gather(-1, lo) / cell.gather(-1, lo).clamp_min(1e-300)
    rest = ((target - cum.gather(-1, lo)) * scale).clamp_min(0)
    slope = (d1 - d0) / (2 * width)
    root = (d0.square() + 4 * slope * rest).clamp_min(0).sqrt()
    t = 2 * rest / (d0 + root).clamp_min(1e-300)
    return y.gather(-1, lo) + torch.minimum(t, width)


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
    never drops below the level is cut at the grid's end. Differentiable in `scores` and
    `peak` (the grid points bracketing each crossing are held fixed).

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


def _safe(x: torch.Tensor) -> torch.Tensor:
    """x where it is nonzero, else 1: a divisor whose unused quotients stay finite, so that
    `torch.where` does not turn their infinite gradients into NaN."""
    return torch.where(x != 0, x, torch.ones_like(x))


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
    # (a zero gap only occurs where an index was clamped, in a branch never selected)
    b = (f1 - f0) / _safe(y1 - y0)
    c = ((f2 - f1) / _safe(y2 - y1) - b) / _safe(y2 - y0)
    c = torch.where((i2 != i1) & torch.isfinite(c), c, torch.zeros_like(c))
    # solve c t^2 + (b - c (y1 - y0)) t + (f0 - level) = 0 for t = x - y0 in the cell
    lin = b - c * (y1 - y0)
    const = f0 - level  # < 0
    disc = lin.square() - 4 * c * const
    root = torch.where(disc > 0, _safe(disc.clamp_min(0)).sqrt(), torch.zeros_like(disc))
    # the root continuous in c as c -> 0 (the line's root): 2 const / (-lin -+ sqrt(disc))
    sign = torch.where(lin >= 0, -1.0, 1.0)
    denom = -lin + sign * root
    t = torch.where(denom != 0, 2 * const / _safe(denom), torch.zeros_like(denom))
    t_line = torch.where(b != 0, -const / _safe(b), torch.zeros_like(b))
    lo_t, hi_t = (
        torch.minimum(torch.zeros_like(y0), y1 - y0),
        torch.maximum(torch.zeros_like(y0), y1 - y0),
    )
    inside = (t >= lo_t) & (t <= hi_t) & torch.isfinite(t)
    t = torch.where(inside, t, t_line.clamp(lo_t, hi_t))
    return y0 + t
