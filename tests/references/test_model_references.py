"""A refined model stores its references, scores them, and every scoring path can pick them."""

from __future__ import annotations

import pytest
import torch

from ebrm.energy.scoring import score_features
from ebrm.errors import ConfigError
from ebrm.features.table import PairFeatures
from ebrm.model import EnergyRewardModel
from ebrm.model.files import REFERENCES_META as META_NAME
from ebrm.model.files import REFERENCES_TENSORS as TENSORS_NAME
from tests.test_model import DIM, make_model, make_model_with_references


@pytest.fixture(scope="module")
def model_and_data():
    return make_model_with_references()


def test_save_and_load_keep_the_references(tmp_path, model_and_data):
    model, emb, raw = model_and_data
    model.save_pretrained(tmp_path / "m")
    assert (tmp_path / "m" / META_NAME).is_file() and (tmp_path / "m" / TENSORS_NAME).is_file()
    loaded = EnergyRewardModel.from_pretrained(tmp_path / "m")
    a, b = model.refine(emb, raw), loaded.refine(emb, raw)
    assert set(a.references) == {
        f"{n}{s}" for n in ("laplace", "ensemble") for s in ("", "_std", "_lcb")
    }
    for key, value in a.references.items():
        torch.testing.assert_close(value, b.references[key])
    assert loaded.references.base_temperature == model.references.base_temperature
    # a model saved without references over it drops the stale files
    make_model().save_pretrained(tmp_path / "m")
    assert not (tmp_path / "m" / META_NAME).exists()
    assert EnergyRewardModel.from_pretrained(tmp_path / "m").references is None


def test_reference_kinds_are_rewards_like_any_other(model_and_data):
    model, emb, raw = model_and_data
    out = model.refine(emb, raw)
    k = model.refine_config.conservative_k
    mean, std = model.references.rewards["laplace"].predict(emb)
    torch.testing.assert_close(out.reward_for("laplace"), mean.float())
    torch.testing.assert_close(out.reward_for("laplace_lcb"), (mean - k * std).float())
    assert out.to_records()[0]["ensemble_std"] == pytest.approx(
        float(out.references["ensemble_std"][0])
    )
    rows = score_features(model, PairFeatures(emb, raw, torch.tensor([0]), torch.tensor([1])))
    assert rows[5]["laplace"] == pytest.approx(float(mean[5]), abs=1e-5)
    with pytest.raises(ConfigError, match="reference heads"):
        make_model().refine(emb, raw).reward_for("ensemble")
    assert emb.shape[1] == DIM
