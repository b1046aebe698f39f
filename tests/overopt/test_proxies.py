"""The proxy families on a small synthetic feature table."""

from __future__ import annotations

import torch

from ebrm.features import PairFeatures
from ebrm.overopt.proxies import EBRMFamily, ReferenceFamily
from ebrm.overopt.scorers import score_all


def _train():
    gen = torch.Generator().manual_seed(0)
    emb = torch.randn(60, 5, generator=gen)
    w = torch.randn(5, generator=gen)
    base = emb @ w
    chosen, rejected = torch.arange(0, 60, 2), torch.arange(1, 60, 2)
    swap = base[chosen] < base[rejected]
    chosen, rejected = torch.where(swap, rejected, chosen), torch.where(swap, chosen, rejected)
    return PairFeatures(emb, base, chosen, rejected), emb, base


def test_ebrm_family_gives_refined_and_a_lower_conservative_reward():
    train, emb, base = _train()
    scorers = EBRMFamily(max_steps=30, conservative_k=1.0).fit_scorers(train, None)
    out = score_all(scorers, emb[:10])
    assert set(out) == {"refined", "conservative"}
    assert out["refined"].shape == (10,)
    assert bool((out["conservative"] <= out["refined"]).all())
    k0 = score_all(EBRMFamily(max_steps=30, conservative_k=0.0).fit_scorers(train, None), emb)
    assert torch.allclose(k0["conservative"], k0["refined"])
    # differentiable in the embeddings: autograd's gradient matches a finite difference
    x = emb[:3].double().requires_grad_(True)
    grad = torch.autograd.grad(scorers["conservative"](x).sum(), x)[0]
    step = torch.zeros_like(x)
    step[:, 0] = 1e-4
    with torch.no_grad():
        numeric = (scorers["conservative"](x + step) - scorers["conservative"](x - step)) / 2e-4
    assert torch.allclose(grad[:, 0], numeric, rtol=1e-2, atol=1e-3)


def test_ebrm_rewards_are_what_the_product_returns_for_the_same_embeddings():
    """The harness's EBRM rewards are `EnergyRewardModel.refine`'s mean and conservative
    (mean - k * spread, the model's k) in raw units, with and without autograd."""
    train, emb, base = _train()
    scorers = EBRMFamily(max_steps=30, conservative_k=2.0).fit_scorers(train, None)
    model = scorers["refined"].model
    assert model.refine_config.conservative_k == 2.0
    refined = model.refine(emb, base)
    mean_raw, conservative_raw = model.to_raw(refined.mean), model.to_raw(refined.conservative)
    # k * spread, not k * std: the two differ on this head, so the test tells them apart
    assert float((refined.std - refined.spread).abs().max()) > 1e-2
    out = score_all(scorers, emb)
    assert torch.equal(out["refined"], mean_raw)  # no autograd: refinement itself
    assert torch.equal(out["conservative"], conservative_raw)
    # with autograd (the ascent): f evaluated again on refinement's grids, float32 rounding
    x = emb.double().requires_grad_(True)
    for name, expected in (("refined", mean_raw), ("conservative", conservative_raw)):
        got = scorers[name](x)
        assert got.requires_grad
        assert torch.allclose(got.detach().float(), expected, rtol=0, atol=1e-5), name


def test_reference_family_gives_means_and_conservative_forms():
    train, emb, base = _train()
    out = score_all(ReferenceFamily(conservative_k=2.0).fit_scorers(train, None), emb)
    assert set(out) == {"laplace", "laplace_lcb", "ensemble", "ensemble_lcb"}
    for name in ("laplace", "ensemble"):
        assert bool((out[f"{name}_lcb"] <= out[name]).all())
        # the references learned the labels' direction: they rank the pairs like the base
        agree = (out[name][train.chosen] > out[name][train.rejected]).float().mean()
        assert float(agree) > 0.8
