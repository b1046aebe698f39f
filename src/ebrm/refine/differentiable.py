"""Refinement's posterior statistics as differentiable functions of the embeddings.

`grid_posterior` resolves each posterior without autograd: it chooses where to evaluate f
(coarse to fine, zoomed local grids for narrow posteriors) and polishes the mode. Those
choices are piecewise constant in the embeddings. Holding them fixed, the statistics are
smooth functions of f at the chosen points, so evaluating f there again with autograd and
the statistics with the same functions (`ebrm.energy.posterior` through
`ebrm.refine._adaptive.statistics`) gives refinement's numbers together with their
gradients. f at the mode is differentiated at the fixed polished mode: at a maximum
df/dy = 0, so the mode's own movement does not change f to first order.

Between the embeddings where a choice switches (a row moving from one group of grids to
another) the values jump by the quadrature's tolerance (`ebrm.refine._adaptive.AGREE`,
2e-4 normalised units, at most); the gradient is that of the piece the embeddings are on.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ebrm.energy.posterior import half_width
from ebrm.refine import _adaptive
from ebrm.refine._util import check_embeddings, eval_mode
from ebrm.refine.grid import _default_grid, _prepare, _resolve_chunk


@dataclass(frozen=True)
class PosteriorMoments:
    """Differentiable statistics of p(y | e), each (N,) float64 in normalised units."""

    mean: torch.Tensor
    std: torch.Tensor  # of the mass on the grid
    spread: torch.Tensor  # half-width where f >= f(mode) - 1/2 (`half_width`)
    log_z: torch.Tensor
    mode_score: torch.Tensor  # f at the polished mode


def differentiable_posterior(
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
) -> PosteriorMoments:
    """`grid_posterior`'s mean, std, spread and log Z with autograd to `embeddings`.

    The same arguments as `ebrm.refine.grid_posterior` (so `**RefineConfig.grid_kwargs()`
    fits), the same values up to float rounding (f is evaluated again, batched
    differently). With `compute_dtype="bfloat16"` the grids are chosen from bf16 scores
    but f is evaluated again in full precision. Costs one `grid_posterior` plus one
    differentiable evaluation of f on each row's final grid; dropout is off.

    Raises:
        IncompatibleArtifactError: embedding dimension differs from the head's.
        DataFormatError: NaN/inf embeddings.
    """
    grid = _default_grid(grid)
    embeddings = check_embeddings(head, embeddings)  # differentiable cast to the head's dtype
    shared, stride, low = _prepare(head, grid, compute_dtype, coarse_to_fine)
    options = dict(
        grid_chunk=grid_chunk, low=low, polish_steps=polish_steps, zoom_levels=zoom_levels
    )
    index, parts = [], []
    with eval_mode(head):
        with torch.no_grad():
            shared_part = head.project_rewards(shared)  # (G, H1)
        for start in range(0, embeddings.shape[0], row_chunk):
            x = embeddings[start : start + row_chunk]
            with torch.no_grad():
                groups = _resolve_chunk(
                    head, head.project_embeddings(x), shared, shared_part, stride, **options
                )
            emb_part = head.project_embeddings(x)  # (n, H1), now with autograd
            for rows, res in groups:
                part = emb_part[rows]
                scores = head.forward_projected(part, head.project_rewards(res.grid))  # (r, G)
                mode = head.project_rewards(res.mode.unsqueeze(1))  # (r, 1, H1)
                peak = head.forward_projected(part, mode)[:, 0]  # (r,)
                stats = _adaptive.statistics(scores, res.grid)
                spread = half_width(scores, res.grid, peak)
                index.append(start + rows)
                parts.append((stats["mean"], stats["std"], spread, stats["log_z"], peak))
    if not parts:
        empty = torch.zeros(0, dtype=torch.float64)
        return PosteriorMoments(empty, empty, empty, empty, empty)
    order = torch.cat(index).argsort()
    columns = [torch.cat(column)[order].to(torch.float64) for column in zip(*parts, strict=True)]
    return PosteriorMoments(*columns)
