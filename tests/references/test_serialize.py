"""References turn into plain parts and back with every prediction kept (the files that
hold the parts are `ebrm.model.files`'s, tested in tests/test_model_files.py)."""

import pytest
import torch

from ebrm.references import base_p_better, fit_references, reference_rewards
from ebrm.references.serialize import from_parts, to_parts
from ebrm.refine.calibration import fit_temperature, temperature_scale


@pytest.fixture(scope="module")
def fitted():
    gen = torch.Generator().manual_seed(0)
    emb = torch.randn(80, 6, generator=gen)
    w = torch.randn(6, generator=gen)
    a, b = torch.arange(0, 80, 2), torch.arange(1, 80, 2)
    first = (emb[a] - emb[b]) @ w + torch.randn(40, generator=gen) > 0
    chosen, rejected = torch.where(first, a, b), torch.where(first, b, a)
    raw = emb @ w
    refs = fit_references(
        emb, chosen[:30], rejected[:30], chosen[30:], rejected[30:], raw_rewards=raw,
        ensemble_size=3,
    )  # fmt: skip
    return emb, refs, raw, chosen[30:], rejected[30:]


def test_parts_round_trip_keeps_every_prediction(fitted):
    emb, refs, *_ = fitted
    assert set(refs.rewards) == {"laplace", "ensemble"}
    for name, ref in refs.rewards.items():
        assert ref.temperature == refs.report[name]["temperature"]
    tensors, fields = to_parts(refs)
    # the on-disk dtypes: float32 covariance, float64 for the rest
    assert tensors["laplace.covariance"].dtype == torch.float32
    assert tensors["laplace.weight"].dtype == torch.float64
    assert {e["kind"] for e in fields["references"].values()} == {"laplace", "ensemble"}
    loaded = from_parts(tensors, fields)
    assert list(loaded.rewards) == list(refs.rewards)  # laplace before ensemble
    assert loaded.base_temperature == refs.base_temperature
    for name, ref in refs.rewards.items():
        other = loaded.rewards[name]
        for a, b in zip(ref.predict(emb), other.predict(emb), strict=True):
            assert torch.allclose(a, b, atol=1e-5)
        p, q = ref.p_better(emb[:5], emb[5:10]), other.p_better(emb[:5], emb[5:10])
        assert torch.allclose(p, q, atol=1e-6)


def test_incomplete_parts_are_named(fitted):
    tensors, fields = to_parts(fitted[1])
    without = {k: v for k, v in tensors.items() if not k.startswith("ensemble.")}
    with pytest.raises(ValueError, match="reference 'ensemble' is incomplete"):
        from_parts(without, fields)
    with pytest.raises(ValueError, match="base_temperature"):
        from_parts(tensors, {**fields, "base_temperature": "warm"})


def test_base_temperature_is_the_fit_of_the_base_sigmoid_on_validation(fitted):
    _, refs, raw, val_c, val_r = fitted
    p = torch.sigmoid((raw[val_c] - raw[val_r]).double())
    assert refs.base_temperature == fit_temperature(p)
    t = refs.base_temperature
    assert torch.allclose(base_p_better(raw[val_c], raw[val_r], t), temperature_scale(p, t))


def test_lcb_is_mean_minus_k_std(fitted):
    emb, refs, *_ = fitted
    out = reference_rewards(refs.rewards["laplace"], emb, k=1.5)
    assert torch.allclose(out.lcb, out.mean - 1.5 * out.std, atol=1e-6)
