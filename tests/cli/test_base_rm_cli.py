"""`ebrm base-rm train` from the command line."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch
from tests.tiny_models import make_tiny_rm

from ebrm.cli import main
from ebrm.rm import BaseRewardModel


def test_help(capsys):
    assert main(["base-rm", "train", "--help"]) == 0
    text = capsys.readouterr().out
    for option in ("--model", "--data", "--out", "--freeze-encoder", "--label-noise", "--seed"):
        assert option in text


def test_train_frozen_head_on_a_jsonl_file(tmp_path, capsys):
    rows = [
        {
            "prompt": f"question {i}",
            "chosen": f"answer {i} excellent",
            "rejected": f"answer {i} bad",
        }
        for i in range(20)
    ]
    data = tmp_path / "pairs.jsonl"
    data.write_text("".join(json.dumps(row) + "\n" for row in rows))
    model = make_tiny_rm(tmp_path / "tiny", "bert", seed=0)
    out = tmp_path / "rm"
    argv = ["base-rm", "train", "--model", str(model), "--data", str(data), "--out", str(out)]
    argv += ["--freeze-encoder", "--label-noise", "0.25", "--seed", "2", "--max-length", "32"]
    assert main(argv) == 0
    assert "train accuracy" in capsys.readouterr().out
    report = json.loads((out / "ebrm_base_rm.json").read_text())
    assert report["data"] == str(data) and report["config"]["seed"] == 2
    assert report["num_flipped"] == round(0.25 * report["num_train"])
    rm = BaseRewardModel.from_pretrained(out, device="cpu")
    assert rm.model_type == "bert"
    # a second run into the same directory is a user error (exit 2), not a traceback
    assert main(argv) == 2
    assert "already holds a result; pass --overwrite" in capsys.readouterr().err


def _tree(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_overwrite_replaces_the_rm_and_its_store_only_once_the_new_one_is_complete(
    tmp_path, monkeypatch, capsys
):
    from ebrm.features.store import FeatureStore
    from ebrm.pipeline import base_rm as store_training

    rows = [
        {"prompt": f"q {i}", "chosen": f"a {i} good", "rejected": f"a {i} bad"} for i in range(12)
    ]
    data = tmp_path / "pairs.jsonl"
    data.write_text("".join(json.dumps(row) + "\n" for row in rows))
    model = make_tiny_rm(tmp_path / "tiny", "bert", seed=0)
    work = tmp_path / "runs"
    out = work / "rm"
    argv = ["base-rm", "train", "--model", str(model), "--data", str(data), "--out", str(out)]
    argv += ["--freeze-encoder", "--max-length", "32", "--seed", "1"]
    assert main(argv) == 0
    first = _tree(out)
    capsys.readouterr()

    def broken(path, rm):
        raise OSError(28, "No space left on device")

    # a replacement that fails before it is complete leaves the previous RM and store as
    # they were, and nothing of its own beside them
    with monkeypatch.context() as patch:
        patch.setattr(store_training, "_relabel", broken)
        assert main([*argv[:-1], "2", "--overwrite"]) == 1
    assert _tree(out) == first
    assert sorted(p.name for p in work.iterdir()) == ["rm"]

    assert main([*argv[:-1], "2", "--overwrite"]) == 0
    assert sorted(p.name for p in work.iterdir()) == ["rm"]
    report = json.loads((out / "ebrm_base_rm.json").read_text())
    assert report["config"]["seed"] == 2
    rm = BaseRewardModel.from_pretrained(out, device="cpu", max_length=32)
    store = FeatureStore.open(out / "features")
    # the new store is the new RM's: its provenance, and its head's rewards on the rows
    assert store.provenance["weights_hash"] == rm.weights_hash
    assert store.provenance["name_or_path"] == str(out.resolve())
    embeddings, rewards = store.load_rows()
    torch.testing.assert_close(rewards, rm.head_reward(embeddings), rtol=0, atol=1e-5)
    assert _tree(out) != first


def test_overwrite_replaces_a_features_out_elsewhere_and_refuses_out_itself(tmp_path, capsys):
    from ebrm.features.store import FeatureStore

    rows = [
        {"prompt": f"q {i}", "chosen": f"a {i} good", "rejected": f"a {i} bad"} for i in range(12)
    ]
    data = tmp_path / "pairs.jsonl"
    data.write_text("".join(json.dumps(row) + "\n" for row in rows))
    model = make_tiny_rm(tmp_path / "tiny", "bert", seed=0)
    out, features = tmp_path / "rm", tmp_path / "feats"
    argv = ["base-rm", "train", "--model", str(model), "--data", str(data), "--out", str(out)]
    argv += ["--freeze-encoder", "--max-length", "32", "--features-out", str(features)]
    assert main([*argv, "--seed", "1"]) == 0
    assert main([*argv, "--seed", "2", "--overwrite"]) == 0
    rm = BaseRewardModel.from_pretrained(out, device="cpu", max_length=32)
    assert FeatureStore.open(features).provenance["weights_hash"] == rm.weights_hash
    assert not (out / "features").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["feats", "pairs.jsonl", "rm", "tiny"]
    capsys.readouterr()
    argv[argv.index(str(features))] = str(out)
    assert main([*argv, "--overwrite"]) == 2
    assert "--features-out" in capsys.readouterr().err
