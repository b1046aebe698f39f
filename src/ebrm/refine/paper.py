"""The paper's refinement: per-sample gradient ascent on f(e, y) with step-size decay.

DESIGN §1.6 ("hybrid initialisation"): start at y = r_norm if -2 <= r_norm <= 2, else
uniform in [-4, 4]; repeat T times: y' = y + lam * df/dy, accept if f(e, y') > f(e, y),
else lam *= eta; a sample stops once lam < min_step. "ascent" is the same search
started at r_norm for every sample (deterministic).

Batched: every sample has its own step size and stopping flag; each iteration evaluates
f and df/dy only for the still-active samples. The embedding half of the first layer is
computed once, and the gradient is taken w.r.t. y only (no parameter gradients).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ebrm.errors import ConfigError, DataFormatError
from ebrm.refine._util import check_embeddings, eval_mode, head_placement

HYBRID_RANGE = 2.0  # r_norm in [-2, 2] is kept as the start
UNIFORM_RANGE = 4.0  # otherwise the start is drawn from U[-4, 4]


@dataclass(frozen=True)
class PaperResult:
    """Outcome of `paper_search`, each (N,) on CPU."""

    reward: torch.Tensor  # final y (float32)
    init: torch.Tensor  # the starting y (float32)
    score: torch.Tensor  # f(e, final y)
    init_score: torch.Tensor  # f(e, init)
    iterations: torch.Tensor  # proposals made before the sample stopped (int64)


def hybrid_init(init: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """r_norm where -2 <= r_norm <= 2, else a uniform draw in [-4, 4].

    One uniform number is drawn per sample (used or not), so a sample's start depends
    only on the seed and its position, not on the other samples' rewards.
    """
    draws = torch.rand(init.shape, generator=generator, dtype=torch.float64)
    uniform = (-UNIFORM_RANGE + 2 * UNIFORM_RANGE * draws).to(init.dtype)
    keep = (init >= -HYBRID_RANGE) & (init <= HYBRID_RANGE)
    return torch.where(keep, init, uniform)


def _score_and_grad(
    head: nn.Module, emb_part: torch.Tensor, y: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """f(e, y) and df/dy for one y per row: (n, H1), (n,) -> (n,), (n,)."""
    with torch.enable_grad():
        y = y.detach().requires_grad_(True)
        score = head.forward_projected(emb_part, head.project_rewards(y.unsqueeze(1)))[:, 0]
        (grad,) = torch.autograd.grad(score.sum(), y)
    return score.detach(), grad


def paper_search(
    head: nn.Module,
    embeddings: torch.Tensor,
    init: torch.Tensor,
    *,
    steps: int = 50,
    step_size: float = 0.5,
    decay: float = 0.2,
    min_step: float = 1e-6,
    hybrid_init: bool = True,
    generator: torch.Generator | None = None,
) -> PaperResult:
    """Paper-mode refinement with its diagnostics; see `paper_refine`."""
    if steps < 0 or not step_size > 0 or not 0 < decay < 1 or not min_step > 0:
        raise ConfigError(
            f"paper refinement needs steps >= 0, step_size > 0, 0 < decay < 1 and "
            f"min_step > 0; got steps={steps}, step_size={step_size}, decay={decay}, "
            f"min_step={min_step}"
        )
    embeddings = check_embeddings(head, embeddings)
    init = torch.as_tensor(init).detach().reshape(-1).cpu()
    if init.shape[0] != embeddings.shape[0]:
        raise DataFormatError(
            f"paper refinement needs one initial reward per embedding row; got "
            f"{init.shape[0]} rewards for {embeddings.shape[0]} rows"
        )
    if not torch.isfinite(init).all():
        raise DataFormatError("initial rewards for paper refinement contain NaN or inf")
    device, dtype = head_placement(head)
    if hybrid_init:
        if generator is None:
            generator = torch.Generator().manual_seed(0)
        start = _hybrid(init.to(dtype), generator)
    else:
        start = init.to(dtype)
    n = embeddings.shape[0]
    with eval_mode(head):
        with torch.no_grad():
            emb_part = head.project_embeddings(embeddings)  # (N, H1), once per response
        y = start.to(device).clone()  # updated in place; the start (and input) stay intact
        score, grad = _score_and_grad(head, emb_part, y) if n else (y.clone(), y.clone())
        init_score = score.clone()
        lam = torch.full((n,), float(step_size), dtype=torch.float64, device=device)
        iterations = torch.zeros(n, dtype=torch.int64, device=device)
        for _ in range(steps):
            active = (lam >= min_step).nonzero().flatten()  # stop once lam < min_step
            if active.numel() == 0:
                break
            proposal = y[active] + lam[active].to(dtype) * grad[active]
            new_score, new_grad = _score_and_grad(head, emb_part[active], proposal)
            accept = new_score > score[active]
            taken, refused = active[accept], active[~accept]
            y[taken], score[taken], grad[taken] = (
                proposal[accept],
                new_score[accept],
                new_grad[accept],
            )
            lam[refused] *= decay
            iterations[active] += 1
    return PaperResult(
        reward=y.float().cpu(),
        init=start.float().cpu(),
        score=score.float().cpu(),
        init_score=init_score.float().cpu(),
        iterations=iterations.cpu(),
    )


_hybrid = hybrid_init  # the keyword argument of paper_search shadows the function's name


def paper_refine(
    head: nn.Module,
    embeddings: torch.Tensor,
    init: torch.Tensor,
    *,
    steps: int = 50,
    step_size: float = 0.5,
    decay: float = 0.2,
    min_step: float = 1e-6,
    hybrid_init: bool = True,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Refined rewards (N,) by the paper's gradient ascent (DESIGN §1.6), dropout off.

    Args:
        head: the energy head.
        embeddings: (N, D) base-RM embeddings.
        init: (N,) normalised base rewards r_norm.
        steps: T, iterations per sample (the paper: 50).
        step_size: lam0 (0.5); decay: eta (0.2); min_step: stop threshold (1e-6).
        hybrid_init: the paper's start (r_norm inside [-2, 2], else uniform in [-4, 4]);
            False starts every sample at r_norm ("ascent" mode, deterministic).
        generator: source of the uniform draws; None means a generator seeded with 0,
            so results are reproducible by default.

    Returns:
        (N,) float32 CPU tensor; f(e, result) >= f(e, start) for every sample.
    """
    return paper_search(
        head,
        embeddings,
        init,
        steps=steps,
        step_size=step_size,
        decay=decay,
        min_step=min_step,
        hybrid_init=hybrid_init,
        generator=generator,
    ).reward
