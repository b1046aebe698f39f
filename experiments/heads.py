"""Bradley-Terry heads on fixed embeddings: the frozen-encoder base RMs and the
label-trained reference heads (linear, and a one-hidden-layer MLP).

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
    generator = torch.Generator().manual_seed(seed + 2000)
    net = torch.nn.Sequential(
        torch.nn.Linear(e_chosen.shape[1], hidden), torch.nn.Tanh(), torch.nn.Linear(hidden, 1)
    )
    opt = torch.optim.AdamW(net.parameters(), lr=learning_rate, weight_decay=weight_decay)
    e_chosen, e_rejected = e_chosen.float(), e_rejected.float()
    best = (-1.0, 0, None)
    for epoch in range(1, epochs + 1):
        order = torch.randperm(e_chosen.shape[0], generator=generator)
        for start in range(0, len(order), batch_size):
            i = order[start : start + batch_size]
            margin = net(e_chosen[i]) - net(e_rejected[i])
            loss = -torch.nn.functional.logsigmoid(margin).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        with torch.no_grad():
            acc = float((net(v_chosen.float()) > net(v_rejected.float())).float().mean())
        if acc > best[0]:
            best = (acc, epoch, {k: v.clone() for k, v in net.state_dict().items()})
    net.load_state_dict(best[2])
    net.eval()
    info = {"hidden": hidden, "epochs": best[1], "weight_decay": weight_decay}
    return net, {**info, "val_accuracy": best[0]}
