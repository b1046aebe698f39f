"""Linear Bradley-Terry heads on fixed embeddings: the frozen-encoder base RMs and the
label-trained reference head.

`fit_bt_head` is the loop of `ebrm.rm.train_bt` (`--freeze-encoder`): AdamW on
`-log sigmoid(w . (e_chosen - e_rejected))`, batch 16, lr 1e-3, 20 epochs, init from the seed.
"""

from __future__ import annotations

import torch


def fit_bt_head(
    e_chosen: torch.Tensor,
    e_rejected: torch.Tensor,
    *,
    seed: int,
    epochs: float = 20,
    learning_rate: float = 1e-3,
    batch_size: int = 16,
    weight_decay: float = 0.0,
    init: torch.Tensor | None = None,
) -> torch.Tensor:
    """The weight vector (D,) of a BT-trained linear reward head."""
    generator = torch.Generator().manual_seed(seed)
    dim = e_chosen.shape[1]
    if init is None:
        bound = 1.0 / dim**0.5  # nn.Linear's default init range
        init = (torch.rand(dim, generator=generator) * 2 - 1) * bound
    weight = init.clone().float().requires_grad_(True)
    opt = torch.optim.AdamW([weight], lr=learning_rate, weight_decay=weight_decay)
    diff = (e_chosen - e_rejected).float()
    n = diff.shape[0]
    total = max(1, round(epochs * -(-n // batch_size)))
    step = 0
    while step < total:
        order = torch.randperm(n, generator=generator)
        for start in range(0, n, batch_size):
            loss = -torch.nn.functional.logsigmoid(diff[order[start : start + batch_size]] @ weight)
            opt.zero_grad()
            loss.mean().backward()
            opt.step()
            step += 1
            if step >= total:
                break
    return weight.detach()


def fit_reference_head(
    e_chosen: torch.Tensor,
    e_rejected: torch.Tensor,
    v_chosen: torch.Tensor,
    v_rejected: torch.Tensor,
    *,
    seed: int,
    epochs_grid: tuple[float, ...] = (5, 10, 20, 40),
    weight_decays: tuple[float, ...] = (0.0, 0.1),
) -> tuple[torch.Tensor, dict]:
    """A fresh BT head trained on the labels; budget and decay chosen on validation.

    This is what a user could do instead of EBRM with the same embeddings and labels.
    """
    best = None
    for wd in weight_decays:
        for epochs in epochs_grid:
            w = fit_bt_head(e_chosen, e_rejected, seed=seed + 1000, epochs=epochs, weight_decay=wd)
            acc = float(((v_chosen - v_rejected) @ w > 0).float().mean())
            if best is None or acc > best[0]:
                best = (acc, w, {"epochs": epochs, "weight_decay": wd, "val_accuracy": acc})
    return best[1], best[2]
