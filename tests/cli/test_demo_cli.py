"""`ebrm demo` command wiring."""

from __future__ import annotations

import json

import pytest

from ebrm.cli import main


def test_demo_help(capsys):
    assert main(["demo", "--help"]) == 0
    text = capsys.readouterr().out
    for option in ("--out", "--data", "--seed", "--device", "--full-finetune", "--preset"):
        assert option in text


def test_demo_unknown_preset_is_a_user_error(tmp_path, capsys):
    code = main(["demo", "--out", str(tmp_path / "run"), "--preset", "nope"])
    assert code == 2
    assert "--preset: 'nope' is not one of 'small-data', 'paper'" in capsys.readouterr().err


@pytest.mark.slow
def test_demo_end_to_end_on_a_jsonl_file(tmp_path, tiny_bert_rm_dir, capsys):
    rows = [
        {"prompt": f"question {i}", "chosen": f"a kind clear answer {i}", "rejected": f"rude {i}"}
        for i in range(30)
    ]
    data = tmp_path / "pairs.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    out = tmp_path / "run"
    args = ["demo", "--out", str(out), "--data", str(data), "--base-model", str(tiny_bert_rm_dir)]
    assert main([*args, "--device", "cpu"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    scores = json.loads((out / "scores.json").read_text())
    assert metrics["n"] == metrics["split"]["test"] == len(scores["ids"])
    assert metrics["delta"]["verdict"] in capsys.readouterr().out.replace("\n", "")
