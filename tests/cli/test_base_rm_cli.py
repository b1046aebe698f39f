"""`ebrm base-rm train` from the command line."""

from __future__ import annotations

import json

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
    assert "new or empty directory" in capsys.readouterr().err
