"""Fitting from PairFeatures: each side's own rows give the same references as shared rows."""

import torch

from ebrm.features.table import PairFeatures
from ebrm.references import fit_references, fit_references_on


def test_compacted_train_and_validation_give_the_same_references():
    gen = torch.Generator().manual_seed(0)
    emb = torch.randn(100, 5, generator=gen)
    raw = emb @ torch.randn(5, generator=gen)
    chosen, rejected = torch.arange(0, 100, 2), torch.arange(1, 100, 2)
    feats = PairFeatures(emb, raw, chosen, rejected)
    train, val = (
        feats.subset(torch.arange(35)).compact(),
        feats.subset(torch.arange(35, 50)).compact(),
    )
    assert train.embeddings.shape[0] == 70  # its own rows
    a = fit_references_on(train, val, ensemble_size=2)
    b = fit_references(emb, chosen[:35], rejected[:35], chosen[35:], rejected[35:],
                       raw_rewards=raw, ensemble_size=2)  # fmt: skip
    assert a.base_temperature == b.base_temperature
    for name in ("laplace", "ensemble"):
        for x, y in zip(a.rewards[name].predict(emb), b.rewards[name].predict(emb), strict=True):
            torch.testing.assert_close(x, y)
        assert a.rewards[name].temperature == b.rewards[name].temperature
