"""The proxy families on a small synthetic feature table."""

from __future__ import annotations

import torch

from ebrm.features import PairFeatures
from ebrm.overopt.proxies import EBRMFamily, ReferenceFamily


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
    out = EBRMFamily(max_steps=30, conservative_k=1.0).fit_score(train, emb[:10], base[:10])
    assert set(out) == {"refined", "conservative"}
    assert out["refined"].shape == (10,)
    assert bool((out["conservative"] <= out["refined"]).all())
    k0 = EBRMFamily(max_steps=30, conservative_k=0.0).fit_score(train, emb[:10], base[:10])
    assert torch.allclose(k0["conservative"], k0["refined"])


def test_reference_family_gives_means_and_conservative_forms():
    train, emb, base = _train()
    out = ReferenceFamily(conservative_k=2.0).fit_score(train, emb, base)
    assert set(out) == {"laplace", "laplace_conservative", "ensemble", "ensemble_conservative"}
    for name in ("laplace", "ensemble"):
        assert bool((out[f"{name}_conservative"] <= out[name]).all())
        # the references learned the labels' direction: they rank the pairs like the base
        agree = (out[name][train.chosen] > out[name][train.rejected]).float().mean()
        assert float(agree) > 0.8
