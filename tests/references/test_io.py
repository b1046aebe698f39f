"""References round-trip through safetensors + JSON; damage is refused."""

import json

import pytest
import torch

from ebrm.errors import CorruptArtifactError
from ebrm.references import (
    base_p_better,
    fit_references,
    load_references,
    reference_rewards,
    save_references,
)
from ebrm.references.io import META_NAME, TENSORS_NAME
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


def test_round_trip_keeps_every_prediction(tmp_path, fitted):
    emb, refs, *_ = fitted
    assert set(refs.rewards) == {"laplace", "ensemble"}
    for name, ref in refs.rewards.items():
        assert ref.temperature == refs.report[name]["temperature"]
    save_references(tmp_path, refs)
    loaded = load_references(tmp_path)
    assert set(loaded.rewards) == set(refs.rewards)
    assert loaded.base_temperature == refs.base_temperature
    for name, ref in refs.rewards.items():
        other = loaded.rewards[name]
        for a, b in zip(ref.predict(emb), other.predict(emb), strict=True):
            assert torch.allclose(a, b, atol=1e-5)
        p, q = ref.p_better(emb[:5], emb[5:10]), other.p_better(emb[:5], emb[5:10])
        assert torch.allclose(p, q, atol=1e-6)
    assert "pickle" not in (tmp_path / META_NAME).read_text()


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


def test_missing_references_load_as_none_and_damage_is_refused(tmp_path, fitted):
    assert load_references(tmp_path) is None
    save_references(tmp_path, fitted[1])
    data = bytearray((tmp_path / TENSORS_NAME).read_bytes())
    data[-1] ^= 0xFF
    (tmp_path / TENSORS_NAME).write_bytes(bytes(data))
    with pytest.raises(CorruptArtifactError, match=TENSORS_NAME):
        load_references(tmp_path)
    meta = json.loads((tmp_path / META_NAME).read_text())
    (tmp_path / META_NAME).write_text("{not json")
    with pytest.raises(CorruptArtifactError, match=META_NAME):
        load_references(tmp_path)
    assert meta["format"] == "ebrm-references"
