"""EnergyHead: the factorised first joint layer is the plain concat-MLP.

`W [e; h] + b = W_e e + (W_h h + b)`: the head computes `W_e e` once per response and
broadcasts it over the K reward candidates. Here the same weights are copied into an
unsplit MLP that runs `W [e; h(y)] + b` on every (response, candidate) pair; values and
gradients (of every weight and of both inputs) must agree.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ebrm.energy.config import EnergyHeadConfig
from ebrm.energy.head import EnergyHead


def _concat_mlp(head: EnergyHead) -> tuple[nn.Sequential, nn.Linear, nn.Sequential]:
    """An unsplit copy: reward branch, one Linear on [e; h], the rest of the joint MLP."""
    branch = nn.Sequential(*[m for m in head.reward_branch if not isinstance(m, nn.Dropout)])
    cfg = head.config
    first = nn.Linear(cfg.embedding_dim + cfg.reward_widths[-1], cfg.joint_widths[0])
    with torch.no_grad():
        first.weight.copy_(
            torch.cat([head.joint_in_embedding.weight, head.joint_in_reward.weight], dim=1)
        )
        first.bias.copy_(head.joint_in_reward.bias)
    rest = nn.Sequential(*[m for m in head.joint_rest if not isinstance(m, nn.Dropout)])
    return branch, first, rest


def _concat_forward(parts, embeddings: torch.Tensor, rewards: torch.Tensor) -> torch.Tensor:
    """f(e_b, y_bk) one pair at a time, as the unsplit MLP writes it: (B, K)."""
    branch, first, rest = parts
    rows = []
    for b in range(embeddings.shape[0]):
        row = []
        for y in rewards[b]:
            h = branch(y.reshape(1, 1))  # (1, R)
            x = torch.cat([embeddings[b : b + 1], h], dim=1)  # (1, D + R)
            row.append(rest(first(x))[0, 0])
        rows.append(torch.stack(row))
    return torch.stack(rows)


@pytest.mark.parametrize("shared", [False, True], ids=["per-row", "shared-candidates"])
def test_factorised_first_layer_equals_the_concat_mlp(shared):
    torch.manual_seed(0)
    config = EnergyHeadConfig(embedding_dim=6, reward_widths=(3, 4), joint_widths=(5, 7))
    head = EnergyHead(config).double().eval()
    branch, first, rest = parts = tuple(m.double() for m in _concat_mlp(head))
    b, k = 3, 4
    emb = torch.randn(b, 6, dtype=torch.float64, requires_grad=True)
    emb_ref = emb.detach().clone().requires_grad_(True)
    if shared:  # (K,) candidates broadcast over all rows
        ys = torch.randn(k, dtype=torch.float64, requires_grad=True)
        ys_ref = ys.detach().clone().requires_grad_(True)
        expanded = ys_ref.unsqueeze(0).expand(b, k)
    else:
        ys = torch.randn(b, k, dtype=torch.float64, requires_grad=True)
        ys_ref = ys.detach().clone().requires_grad_(True)
        expanded = ys_ref

    out = head(emb, ys)  # (B, K)
    ref = _concat_forward(parts, emb_ref, expanded)
    torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-12)

    weights = torch.randn(b, k, dtype=torch.float64)  # a generic upstream gradient
    (out * weights).sum().backward()
    (ref * weights).sum().backward()
    torch.testing.assert_close(emb.grad, emb_ref.grad, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(ys.grad, ys_ref.grad, rtol=1e-10, atol=1e-12)
    d = config.embedding_dim
    torch.testing.assert_close(head.joint_in_embedding.weight.grad, first.weight.grad[:, :d])
    torch.testing.assert_close(head.joint_in_reward.weight.grad, first.weight.grad[:, d:])
    torch.testing.assert_close(head.joint_in_reward.bias.grad, first.bias.grad)
    split_rest = [p.grad for p in head.joint_rest.parameters()]
    for mine, theirs in zip(split_rest, [p.grad for p in rest.parameters()], strict=True):
        torch.testing.assert_close(mine, theirs, rtol=1e-10, atol=1e-12)
    for mine, theirs in zip(
        [p.grad for p in head.reward_branch.parameters()],
        [p.grad for p in branch.parameters()],
        strict=True,
    ):
        torch.testing.assert_close(mine, theirs, rtol=1e-10, atol=1e-12)


def test_split_init_draws_like_one_linear_on_the_concatenation():
    # nn.Linear(D + R, H) draws weights and bias from U(-1/sqrt(D + R), 1/sqrt(D + R))
    torch.manual_seed(1)
    head = EnergyHead(EnergyHeadConfig(embedding_dim=60, reward_widths=(4,), joint_widths=(50,)))
    bound = (60 + 4) ** -0.5
    for tensor in (
        head.joint_in_embedding.weight,
        head.joint_in_reward.weight,
        head.joint_in_reward.bias,
    ):
        assert tensor.abs().max() <= bound
        assert tensor.abs().max() > 0.9 * bound  # spread over the whole interval
