"""`ebrm train --no-references`: a model without references, whose reference kinds fail clearly."""

import pytest

from ebrm.cli import main
from ebrm.errors import ConfigError


def test_train_without_references_writes_none_and_their_kinds_say_so(tmp_path, capsys):
    from ebrm.features.extract import extract_features
    from ebrm.features.store import FeatureStore
    from ebrm.model import EnergyRewardModel
    from ebrm.model.names import REFERENCES_META as META_NAME
    from ebrm.model.names import REFERENCES_TENSORS as TENSORS_NAME
    from tests.fakes import FakeRM, make_pairs

    store = tmp_path / "store"
    extract_features(FakeRM(dim=8), make_pairs(60, duplicates=False), store, progress=False)
    out = tmp_path / "model"
    args = ["train", "--features", str(store), "--out", str(out), "--steps", "5", "--no-progress"]
    assert main([*args, "--no-references"]) == 0
    assert "refined model written" in capsys.readouterr().out
    assert not (out / META_NAME).exists() and not (out / TENSORS_NAME).exists()
    model = EnergyRewardModel.from_pretrained(out)
    assert model.references is None
    feats = FeatureStore.open(store).load()
    refined = model.refine(feats.embeddings[:4], feats.rewards[:4])
    with pytest.raises(ConfigError, match="reference heads"):
        refined.reward_for("laplace")
    assert main(["train", "--help"]) == 0
    assert "--no-references" in capsys.readouterr().out
