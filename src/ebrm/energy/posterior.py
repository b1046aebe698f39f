"""The posterior p(y | e) ∝ exp f(e, y) on a reward grid, as much of it as training needs.

Training needs the posterior mean in two places: differentiably, in preference-aware
objectives (`nce+bt`), and without gradients, to score validation pairs when choosing the
checkpoint. Both use the trapezoid rule on a shared grid, defined once here; `ebrm.refine`
(which adds polished modes, zoomed grids for narrow posteriors, quantiles and P(a > b))
builds on the same weights and the same grid range.
"""

from __future__ import annotations

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
    log_w = trapezoid_log_weights(grid).to(scores.dtype)
    return torch.softmax(scores + log_w, dim=-1) @ grid


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
    log_w = trapezoid_log_weights(grid).to(param.dtype)
    means, modes = [], []
    for start in range(0, embeddings.shape[0], row_chunk):
        emb = embeddings[start : start + row_chunk].to(device=param.device, dtype=param.dtype)
        scores = head.forward_projected(head.project_embeddings(emb), grid_part)  # (B, G)
        means.append((torch.softmax(scores + log_w, dim=-1) @ grid).float().cpu())
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
