"""The one Bradley-Terry head fit: the written-out loop, validation selection, an MLP head."""

from __future__ import annotations

import pytest
import torch

from ebrm.rm.bt_head import fit_bt_head


def _data(n=60, d=5, seed=0):
    gen = torch.Generator().manual_seed(seed)
    direction = torch.randn(d, generator=gen)
    a, b = torch.randn(n, d, generator=gen), torch.randn(n, d, generator=gen)
    better = (a @ direction > b @ direction)[:, None]
    return torch.where(better, a, b), torch.where(better, b, a), direction


def _loop(ec, er, *, seed, epochs, lr, wd, batch):
    """The BT head loop written straight out: uniform init, AdamW, seeded shuffles."""
    gen = torch.Generator().manual_seed(seed)
    d = ec.shape[1]
    w = ((torch.rand(d, generator=gen) * 2 - 1) * (1.0 / d**0.5)).requires_grad_(True)
    opt = torch.optim.AdamW([w], lr=lr, weight_decay=wd)
    n = ec.shape[0]
    total, step = round(epochs * -(-n // batch)), 0
    while step < total:
        order = torch.randperm(n, generator=gen)
        for s in range(0, n, batch):
            i = order[s : s + batch]
            loss = -torch.nn.functional.logsigmoid((ec[i] - er[i]) @ w).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
            if step >= total:
                break
    return w.detach()


@pytest.mark.parametrize("epochs", [1, 2.5, 7])
def test_linear_fit_equals_the_written_out_loop(epochs):
    ec, er, _ = _data()
    fit = fit_bt_head(ec, er, seed=3, epochs=epochs, learning_rate=1e-2, weight_decay=0.1,
                      batch_size=16)  # fmt: skip
    expected = _loop(ec, er, seed=3, epochs=epochs, lr=1e-2, wd=0.1, batch=16)
    assert torch.equal(fit.weight, expected)
    assert fit.steps == round(epochs * 4) and fit.val_accuracy is None
    assert torch.allclose(fit.reward(ec), ec @ expected)


def test_the_fit_learns_the_preferred_direction():
    ec, er, direction = _data(n=300)
    fit = fit_bt_head(ec, er, seed=0, epochs=30, learning_rate=1e-2)
    assert float(((ec - er) @ fit.weight > 0).float().mean()) > 0.95
    cosine = torch.nn.functional.cosine_similarity(fit.weight, direction, dim=0)
    assert float(cosine) > 0.9


def test_validation_returns_the_best_epoch_of_the_budget():
    ec, er, _ = _data(n=64, seed=1)
    vc, vr, _ = _data(n=40, seed=2)
    fit = fit_bt_head(ec, er, seed=0, epochs=6, learning_rate=3e-2, batch_size=16,
                      validation=(vc, vr))  # fmt: skip
    # the same budget stopped at every epoch: the selected one is the best on validation
    accs = []
    for e in range(1, 7):
        w = fit_bt_head(ec, er, seed=0, epochs=e, learning_rate=3e-2, batch_size=16).weight
        accs.append(float(((vc - vr) @ w > 0).float().mean()))
    best = max(accs)
    assert fit.val_accuracy == best and fit.epoch == accs.index(best) + 1
    assert fit.steps == 6 * 4


def test_a_module_head_is_fitted_in_place_and_selected_on_validation():
    ec, er, _ = _data(n=80, seed=4)
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    fit = fit_bt_head(ec, er, seed=0, epochs=5, learning_rate=1e-2, head=net,
                      validation=(ec, er))  # fmt: skip
    assert fit.head is net and fit.weight is None and not net.training
    with torch.no_grad():
        acc = float((net(ec) > net(er)).float().mean())
    assert acc == fit.val_accuracy and acc > 0.8
    assert torch.allclose(fit.reward(ec), net(ec).reshape(-1).detach())


def test_bad_budget_is_refused():
    ec, er, _ = _data()
    with pytest.raises(ValueError, match="epochs must be > 0"):
        fit_bt_head(ec, er, seed=0, epochs=0)
