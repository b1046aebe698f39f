"""The posterior mode: polish each row's best grid point by safeguarded parabolic steps.

f is smooth in y (a tanh MLP), so near its maximum it is close to a parabola: the vertex of
the parabola through the best point and its two grid neighbours lands within
~bracket^3 of the maximum, and each further step (one head evaluation per row) roughly
cubes the error again. A step that is not usable (degenerate, outside the bracket, or
too close to the best point) falls back to a golden-section point in the larger half of
the bracket, so the bracket still shrinks. The bracket always holds the best point
evaluated, so f never gets worse than the grid's best.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ebrm.refine._scoring import score_points

_GOLDEN = (3.0 - math.sqrt(5.0)) / 2.0  # fraction of a segment a golden-section step takes
_CONVERGED = 1e-6  # stop once every bracket is this small (normalised units)


def _parabola_vertex(x0, x1, x2, f0, f1, f2) -> torch.Tensor:
    """Abscissa of the parabola's vertex through three points (NaN/inf when degenerate)."""
    num = (x1 - x0).square() * (f1 - f2) - (x1 - x2).square() * (f1 - f0)
    den = (x1 - x0) * (f1 - f2) - (x1 - x2) * (f1 - f0)
    return x1 - 0.5 * num / den


def polish_mode(
    head: nn.Module,
    emb_part: torch.Tensor,
    grid: torch.Tensor,
    scores: torch.Tensor,
    steps: int,
    *,
    rescore: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The mode of f per row, from f on per-row grids.

    Args:
        head, emb_part: the head and the rows' projected embeddings (n, H1).
        grid: (n, G) strictly increasing points per row.
        scores: (n, G) f on them.
        steps: most parabolic steps (each one head evaluation per row); 0 = grid argmax.
        rescore: evaluate f at the starting bracket again in full precision (when the grid
            was scored in a lower precision).

    Returns:
        mode (n,) and f at the mode (n,), the best point evaluated.
    """
    last = grid.shape[1] - 1
    k = scores.argmax(dim=1, keepdim=True)  # (n, 1)
    lo, hi = (k - 1).clamp(0, last), (k + 1).clamp(0, last)
    a, x, b = (grid.gather(1, i)[:, 0] for i in (lo, k, hi))
    fa, fx, fb = (scores.gather(1, i)[:, 0] for i in (lo, k, hi))
    if rescore:
        fa, fx, fb = (score_points(head, emb_part, p) for p in (a, x, b))
    # a best point at an end of the grid: the maximum over the range is that end unless f
    # turns within the end cell; one parabola through the three end points checks that
    at_end = (k[:, 0] == 0) | (k[:, 0] == last)
    if steps and bool(at_end.any()):
        third = torch.where(k == 0, k + 2, k - 2).clamp(0, last)
        near = torch.where(k == 0, hi, lo)
        x1, x2 = grid.gather(1, near)[:, 0], grid.gather(1, third)[:, 0]
        f1, f2 = fa.where(k[:, 0] == last, fb), scores.gather(1, third)[:, 0]
        u = _parabola_vertex(x, x1, x2, fx, f1, f2)
        inside = at_end & torch.isfinite(u) & ((u - x) * (x1 - u) > 0)
        fu = score_points(head, emb_part, torch.where(inside, u, x))
        take = inside & (fu > fx)
        x, fx = torch.where(take, u, x), torch.where(take, fu, fx)
    active = ~at_end
    for _ in range(steps):
        u = _parabola_vertex(a, x, b, fa, fx, fb)
        # a vertex this close to x means the parabola's maximum is found: stop that row
        active &= ~(torch.isfinite(u) & ((u - x).abs() <= _CONVERGED * (1 + x.abs())))
        active &= (b - a) > _CONVERGED * (1 + x.abs())
        if not bool(active.any()):
            break
        tiny = 1e-3 * (b - a)  # a step closer than this to an end teaches little
        usable = torch.isfinite(u) & (u > a + tiny) & (u < b - tiny)
        right_larger = (b - x) > (x - a)
        golden = torch.where(right_larger, x + _GOLDEN * (b - x), x - _GOLDEN * (x - a))
        u = torch.where(usable, u, golden)
        fu = score_points(head, emb_part, u)
        better, left = active & (fu > fx), u < x
        worse = active & ~better
        # keep a bracket (a, x, b) with f(x) >= f(a), f(b) around the best point so far
        a, fa = (
            torch.where(better & ~left, x, torch.where(worse & left, u, a)),
            torch.where(better & ~left, fx, torch.where(worse & left, fu, fa)),
        )
        b, fb = (
            torch.where(better & left, x, torch.where(worse & ~left, u, b)),
            torch.where(better & left, fx, torch.where(worse & ~left, fu, fb)),
        )
        x, fx = torch.where(better, u, x), torch.where(better, fu, fx)
    return x, fx
