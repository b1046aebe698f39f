"""A policy in the frozen encoder's embedding space: ascent on a proxy under a distance budget.

From each real response's embedding x0, the policy moves to the point that maximises the
proxy reward within an angle budget `b` of x0; gold is scored at the same point. The budget
plays the part of the KL in the pool policies (how far the policy may move from pi0), so
gold against `b` is an over-optimisation curve with no pool at all: nothing limits the
exploit to texts someone wrote.

**The constraint set.** Candidates are embedded by a BERT-style sequence classifier, whose
head reads the pooler output tanh(W h_CLS + b): not L2-normalised, each coordinate in
(-1, 1). On the shared HH-RLHF responses (MiniLM-L6, 600 responses) the norms concentrate
on a thin shell, 1.26 +- 0.07 (min 1.08, max 1.50), while the norms about the data mean
spread widely (0.62 +- 0.17), and no coordinate exceeds 0.28 (far from tanh's bounds). So
the embeddings live near a sphere about the origin, and each iterate is kept on the sphere
of its own start's norm, ||x|| = ||x0||: the policy may change what the response says
(its direction), not leave the shell every response lies on. (A sphere about the data mean
would let the norm drift by half its range; the cube's bounds never bind.) The budget is the
angle between x and x0, so the feasible set is a spherical cap:
    C(x0, b) = {x : ||x|| = ||x0||, angle(x, x0) <= b}.

**The ascent.** Projected gradient ascent on C(x0, b), warm-started from the solution at the
previous (smaller) budget, so the proxy value rises with the budget: each step moves along
the geodesic in the direction of the gradient's tangent part by a per-row angle, projects
onto the cap (`project_to_cap`, exact), and is kept only if the proxy rises (the step angle
then grows by half, else halves; it restarts at `step` for every budget). For a linear
proxy the solution is the point of the great circle from x0 towards the proxy's direction
at angle min(b, the proxy's own optimum), where a linear gold is a sinusoid in the angle:
it peaks before the proxy's optimum when the two directions differ (and the start lies on
the gold side). Whether it falls within the budgets measured is what the harness reports.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from ebrm.overopt.curves import Curve
from ebrm.overopt.scorers import Scorer


def _unit(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(x / ||x||, ||x||) per row, the direction 0 where the row is 0."""
    norm = x.norm(dim=-1, keepdim=True)
    return torch.where(norm > 0, x / norm.clamp_min(1e-30), torch.zeros_like(x)), norm


def angle(x: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
    """The angle between the rows of x and x0 [rad], (M,), computed stably with atan2."""
    u0, _ = _unit(x0)
    along = (x * u0).sum(-1)
    return torch.atan2((x - along.unsqueeze(-1) * u0).norm(dim=-1), along)


def project_to_cap(x: torch.Tensor, x0: torch.Tensor, max_angle: float) -> torch.Tensor:
    """The nearest point (Euclidean) of C(x0, max_angle) to each row of x, (M, D).

    Nearest on the sphere means largest x . y, i.e. smallest angle to x: the point at
    angle min(angle(x, x0), max_angle) on the great circle through x0 and x. A row parallel
    to x0 (no circle through both) goes to x0 itself.
    """
    u0, radius = _unit(x0)
    along = (x * u0).sum(-1, keepdim=True)
    direction, orthogonal = _unit(x - along * u0)
    theta = torch.atan2(orthogonal, along).clamp(max=max_angle)
    projected = radius * (torch.cos(theta) * u0 + torch.sin(theta) * direction)
    return torch.where(orthogonal > 0, projected, x0)


def _gradient(scorer: Scorer, x: torch.Tensor) -> torch.Tensor:
    with torch.enable_grad():
        leaf = x.detach().requires_grad_(True)
        return torch.autograd.grad(scorer(leaf).sum(), leaf)[0]


def _value(scorer: Scorer, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return scorer(x).reshape(-1)


def ascend(
    scorer: Scorer,
    x0: torch.Tensor,
    budgets: Sequence[float],
    *,
    steps: int = 20,
    step: float = 0.05,
) -> torch.Tensor:
    """The proxy's (approximate) maximiser on C(x0, b) for every budget b: (J, M, D).

    Args:
        scorer: the reward ascended, differentiable in its (M, D) input.
        x0: (M, D) start embeddings (the cap's centres; float64 recommended).
        budgets: J non-decreasing angles [rad], 0 allowed (then x0 itself).
        steps: gradient steps per budget.
        step: the initial step angle [rad] of every row.
    """
    if any(b1 < b0 for b0, b1 in zip(budgets, budgets[1:], strict=False)):
        raise ValueError(f"budgets must be non-decreasing. Got {list(budgets)} instead.")
    x = x0.clone()
    value = _value(scorer, x)
    out = []
    for budget in budgets:
        # every budget starts from the initial step: at the last budget's optimum every step
        # failed and halved it
        eta = torch.full((x0.shape[0], 1), float(step), dtype=x0.dtype)
        for _ in range(steps if budget > 0 else 0):
            unit, radius = _unit(x)
            grad = _gradient(scorer, x)
            direction, _ = _unit(grad - (grad * unit).sum(-1, keepdim=True) * unit)
            moved = torch.cos(eta) * x + torch.sin(eta) * radius * direction  # geodesic
            candidate = project_to_cap(moved, x0, budget)
            new = _value(scorer, candidate)
            better = (new > value).unsqueeze(-1)
            x = torch.where(better, candidate, x)
            value = torch.where(better.squeeze(-1), new, value)
            eta = torch.where(better, (eta * 1.5).clamp(max=math.pi / 4), eta * 0.5)
        out.append(x.clone())
    return torch.stack(out)


def per_prompt(values: torch.Tensor, prompt: torch.Tensor, num_prompts: int) -> torch.Tensor:
    """Mean of (M, ...) per-start values over each prompt's starts: (P, ...)."""
    shape = (num_prompts, *values.shape[1:])
    sums = torch.zeros(shape, dtype=values.dtype).index_add_(0, prompt, values)
    counts = torch.zeros(num_prompts, dtype=values.dtype).index_add_(
        0, prompt, torch.ones_like(prompt, dtype=values.dtype)
    )
    return sums / counts.clamp_min(1).reshape(-1, *([1] * (values.ndim - 1)))


def ascent_curve(
    gold: Scorer,
    proxy: Scorer,
    x0: torch.Tensor,
    prompt: torch.Tensor,
    budgets: Sequence[float],
    *,
    steps: int = 20,
    step: float = 0.05,
) -> Curve:
    """Gold at the proxy's constrained maximiser, per prompt, against the angle budget.

    `Curve.kl` holds the budgets [rad] (the KL analogue); labels: the mean angle actually
    moved and the mean proxy value, per budget.

    Args:
        x0: (M, D) start embeddings; prompt: (M,) their pool prompt (0..P-1, every one used).
    """
    x0 = torch.as_tensor(x0, dtype=torch.float64)
    prompt = torch.as_tensor(prompt, dtype=torch.long)
    num_prompts = int(prompt.max()) + 1
    path = ascend(proxy, x0, budgets, steps=steps, step=step)  # (J, M, D)
    gold_values = torch.stack([_value(gold, xj) for xj in path], 1).double()  # (M, J)
    proxy_values = torch.stack([_value(proxy, xj) for xj in path], 1).double()
    moved = torch.stack([angle(xj, x0) for xj in path], 1)
    labels = {
        "angle_moved": [float(v) for v in moved.mean(0)],
        "proxy": [float(v) for v in proxy_values.mean(0)],
    }
    kl = torch.tensor([float(b) for b in budgets], dtype=torch.float64)
    return Curve(kl, per_prompt(gold_values, prompt, num_prompts), labels)
