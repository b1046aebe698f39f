"""One Bradley-Terry head fit on fixed embeddings (the frozen-encoder recipe).

`fit_bt_head` minimises `-log sigmoid(head(e_chosen) - head(e_rejected))` with AdamW over
seeded mini-batches. The head is a linear weight vector (no bias: it cancels in the
difference) unless a module is passed (e.g. a small MLP). Two ways to stop:

* a fixed budget (`epochs`, fractional allowed): the weights after the last step;
* `validation=(v_chosen, v_rejected)`: pairwise accuracy (strict >) after every epoch, and
  the weights of the best epoch (the first, on ties) are returned.

Used by `ebrm base-rm train --freeze-encoder`, the over-optimisation harness and the
reference heads of `experiments/`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm


@dataclass(frozen=True)
class BTHeadFit:
    """What `fit_bt_head` returns."""

    weight: torch.Tensor | None  # (D,) the linear head; None when a module was fitted
    head: torch.nn.Module | None  # the fitted module (in eval mode); None for a linear head
    epoch: float  # epochs trained (with validation: the selected epoch)
    steps: int  # optimiser steps taken
    val_accuracy: float | None  # at the selected epoch (None without validation)

    def reward(self, embeddings: torch.Tensor) -> torch.Tensor:
        """(N, D) -> (N,) rewards of the fitted head."""
        if self.weight is not None:
            return embeddings.float() @ self.weight
        with torch.no_grad():
            return self.head(embeddings.float()).reshape(-1)


def _margin(e_chosen, e_rejected, *, init, head, generator):
    """(parameters, margin(x_chosen, x_rejected, rows=None) -> (B,)) of the head to fit."""
    if head is not None:
        head.train()

        def module_margin(x_chosen, x_rejected, rows=None):
            if rows is not None:
                x_chosen, x_rejected = e_chosen[rows], e_rejected[rows]
            return (head(x_chosen) - head(x_rejected)).reshape(-1)

        return list(head.parameters()), module_margin
    dim = e_chosen.shape[1]
    if init is None:  # nn.Linear's default range
        init = (torch.rand(dim, generator=generator) * 2 - 1) * (1.0 / dim**0.5)
    weight = init.detach().clone().float().requires_grad_(True)
    diff = e_chosen - e_rejected  # (P, D)

    def linear_margin(x_chosen, x_rejected, rows=None):
        return (diff[rows] if rows is not None else x_chosen - x_rejected) @ weight

    return [weight], linear_margin


def fit_bt_head(
    e_chosen: torch.Tensor,
    e_rejected: torch.Tensor,
    *,
    seed: int,
    epochs: float = 20,
    learning_rate: float = 1e-3,
    weight_decay: float = 0.0,
    batch_size: int = 16,
    init: torch.Tensor | None = None,
    head: torch.nn.Module | None = None,
    validation: tuple[torch.Tensor, torch.Tensor] | None = None,
    progress: bool = False,
) -> BTHeadFit:
    """Fit a Bradley-Terry head on (P, D) chosen and rejected embeddings.

    Args:
        seed: seeds the linear init (when `init` is None) and the batch order.
        epochs: passes over the pairs (steps = round(epochs * ceil(P / batch_size))).
        init: (D,) start of the linear head; default uniform(+-1/sqrt(D)) (nn.Linear's range).
        head: a module (D) -> (1) to fit instead of a linear head (its own init is kept).
        validation: (V, D) chosen and rejected embeddings; select the best epoch on them.
        progress: show a tqdm bar.
    """
    if not epochs > 0 or batch_size < 1:
        raise ValueError(f"epochs must be > 0 and batch_size >= 1; got {epochs}, {batch_size}.")
    generator = torch.Generator().manual_seed(seed)
    e_chosen, e_rejected = e_chosen.float(), e_rejected.float()
    params, margin = _margin(e_chosen, e_rejected, init=init, head=head, generator=generator)
    optimiser = torch.optim.AdamW(params, lr=learning_rate, weight_decay=weight_decay)
    n = e_chosen.shape[0]
    per_epoch = math.ceil(n / batch_size)
    total = max(1, round(epochs * per_epoch))
    best = None  # (accuracy, epoch, state)
    step = 0
    bar = tqdm(total=total, desc="train head", disable=not progress)
    while step < total:
        order = torch.randperm(n, generator=generator)
        for start in range(0, n, batch_size):
            loss = -torch.nn.functional.logsigmoid(
                margin(None, None, order[start : start + batch_size])
            ).mean()
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            step += 1
            bar.update(1)
            if step >= total:
                break
        if validation is not None:
            with torch.no_grad():
                acc = margin(validation[0].float(), validation[1].float()) > 0
                acc = float(acc.float().mean())  # strict >: ties count as wrong
            if best is None or acc > best[0]:
                best = (acc, step / per_epoch, [p.detach().clone() for p in params])
    bar.close()
    epoch, val_accuracy = step / per_epoch, None
    if best is not None:
        val_accuracy, epoch = best[0], best[1]
        with torch.no_grad():
            for p, saved in zip(params, best[2], strict=True):
                p.copy_(saved)
    if head is None:
        return BTHeadFit(params[0].detach(), None, epoch, step, val_accuracy)
    head.eval()
    return BTHeadFit(None, head, epoch, step, val_accuracy)
