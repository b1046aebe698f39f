"""The fused training path is the same function as the head, with the same gradients."""

import pytest
import torch
from torch.autograd import gradcheck

from ebrm.energy.config import EnergyHeadConfig
from ebrm.energy.fused import _JointMLP, _linears, candidate_scores, drop_mask
from ebrm.energy.head import EnergyHead


def _head(dropout):
    torch.manual_seed(0)
    cfg = EnergyHeadConfig(
        embedding_dim=6, reward_widths=(4, 5), joint_widths=(7, 8, 3), dropout=dropout
    )
    return EnergyHead(cfg).double().train()


def test_fused_equals_head_without_dropout_values_and_gradients():
    head = _head(0.0)
    emb, cands = torch.randn(3, 6, dtype=torch.double), torch.randn(3, 5, dtype=torch.double)
    fused = candidate_scores(head, head.project_embeddings(emb), cands)
    plain = head(emb, cands)
    torch.testing.assert_close(fused, plain, rtol=0, atol=1e-12)
    params = list(head.parameters())
    g_fused = torch.autograd.grad(fused.pow(2).sum(), params)
    g_plain = torch.autograd.grad(plain.pow(2).sum(), params)
    for a, b in zip(g_fused, g_plain, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_fused_with_dropout_matches_its_numerical_gradient():
    head = _head(0.5)
    emb, cands = torch.randn(3, 6, dtype=torch.double), torch.randn(3, 5, dtype=torch.double)
    inputs = [
        head.project_embeddings(emb).detach(),
        head.reward_branch(cands.unsqueeze(-1)).detach(),
        head.joint_in_reward.weight.detach(),
        head.joint_in_reward.bias.detach(),
    ]
    for layer in _linears(head):
        inputs += [layer.weight.detach(), layer.bias.detach()]
    inputs = [x.clone().requires_grad_() for x in inputs]

    def f(*xs):
        torch.manual_seed(5)  # the same dropout masks on every evaluation
        return _JointMLP.apply(*xs[:4], 0.5, *xs[4:])

    assert gradcheck(f, tuple(inputs))
    # the forward is tanh -> mask / keep -> linear, layer after layer
    torch.manual_seed(5)
    out = f(*inputs)
    torch.manual_seed(5)
    masks = [~drop_mask((3, 5, w), 0.5) for w in (7, 8, 3)]
    x = inputs[0].unsqueeze(1) + inputs[1] @ inputs[2].t() + inputs[3]
    for layer, mask in zip(_linears(head), masks, strict=False):
        x = layer(torch.tanh(x) * mask / 0.5)
    torch.testing.assert_close(out, x.squeeze(-1).detach(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("p", [0.5, 0.1, 0.125, 0.0])
def test_drop_mask_rate(p):
    torch.manual_seed(0)
    mask = drop_mask((400, 500), p)
    assert mask.dtype == torch.bool and mask.shape == (400, 500)
    assert abs(mask.double().mean().item() - p) < 0.005


def test_reward_features_apply_inverted_dropout():
    from ebrm.energy.fused import _reward_features

    head = _head(0.5)
    cands = torch.randn(3, 5, dtype=torch.double)
    torch.manual_seed(3)
    got = _reward_features(head, cands)
    torch.manual_seed(3)
    x = cands.unsqueeze(-1)
    for module in head.reward_branch:
        if isinstance(module, torch.nn.Dropout):
            x = x * (~drop_mask(tuple(x.shape), 0.5)) / 0.5
        else:
            x = module(x)
    torch.testing.assert_close(got, x, rtol=1e-12, atol=1e-12)
    head.eval()
    torch.testing.assert_close(_reward_features(head, cands), head.reward_branch(cands[..., None]))
