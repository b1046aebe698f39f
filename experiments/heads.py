"""Bradley-Terry heads on fixed embeddings: the frozen-encoder base RMs and the
label-trained reference heads (linear, and a one-hidden-layer MLP).

All three are `ebrm.rm.bt_head.fit_bt_head`, the loop of `ebrm base-rm train
--freeze-encoder`: AdamW on `-log sigmoid(head(e_chosen) - head(e_rejected))`, batch 16.
"""

from __future__ import annotations

import torch

from ebrm.rm.bt_head import fit_bt_head


def fit_linear_head(
    e_chosen: torch.Tensor,
    e_rejected: torch.Tensor,
    *,
    seed: int,
    epochs: float = 20,
    learning_rate: float = 1e-3,
    weight_decay: float = 0.0,
) -> torch.Tensor:
    """The weight vector (D,) of a BT-trained linear reward head (lr 1e-3, 20 epochs)."""
    fit = fit_bt_head(e_chosen, e_rejected, seed=seed, epochs=epochs,
                      learning_rate=learning_rate, weight_decay=weight_decay)  # fmt: skip
    return fit.weight


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
            w = fit_linear_head(e_chosen, e_rejected, seed=seed + 1000, epochs=epochs,
                                weight_decay=wd)  # fmt: skip
            acc = float(((v_chosen - v_rejected) @ w > 0).float().mean())
            if best is None or acc > best[0]:
                best = (acc, w, {"epochs": epochs, "weight_decay": wd, "val_accuracy": acc})
    return best[1], best[2]


def fit_reference_mlp(
    e_chosen: torch.Tensor,
    e_rejected: torch.Tensor,
    v_chosen: torch.Tensor,
    v_rejected: torch.Tensor,
    *,
    seed: int,
    hidden: int = 64,
    epochs: int = 40,
    learning_rate: float = 1e-3,
    weight_decay: float = 1e-2,
    batch_size: int = 16,
) -> tuple[torch.nn.Module, dict]:
    """A fresh nonlinear BT head (D -> hidden -> 1, tanh) trained on the labels.

    The epoch is chosen on validation accuracy. It bounds what any head that sees the same
    embeddings and labels (the energy head included) could add to a linear base.
    """
    torch.manual_seed(seed + 2000)
    net = torch.nn.Sequential(
        torch.nn.Linear(e_chosen.shape[1], hidden), torch.nn.Tanh(), torch.nn.Linear(hidden, 1)
    )
    fit = fit_bt_head(
        e_chosen, e_rejected, seed=seed + 2000, epochs=epochs, learning_rate=learning_rate,
        weight_decay=weight_decay, batch_size=batch_size, head=net,
        validation=(v_chosen, v_rejected),
    )  # fmt: skip
    info = {"hidden": hidden, "epochs": round(fit.epoch), "weight_decay": weight_decay}
    return fit.head, {**info, "val_accuracy": fit.val_accuracy}
