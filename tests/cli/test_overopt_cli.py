"""`ebrm overopt`: --help, a tiny end-to-end run on a tiny encoder, user errors."""

from __future__ import annotations

import json

import pytest

from ebrm.cli import main


def test_help(capsys):
    assert main(["overopt", "--help"]) == 0
    text = capsys.readouterr().out
    for option in ("--data", "--out", "--prompts", "--candidates", "--label-noise", "--edited"):
        assert option in text


def _write_pairs(path, n=24):
    rows = [
        {
            "chosen": f"\n\nHuman: question {i} about cats?\n\nAssistant: a kind answer {i}.",
            "rejected": f"\n\nHuman: question {i} about cats?\n\nAssistant: go away {i}",
        }
        for i in range(n)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.mark.slow  # the energy head's full 2000-step budget, twice the references
def test_end_to_end_on_a_tiny_encoder(tmp_path, tiny_bert_rm_dir, capsys):
    data, out = _write_pairs(tmp_path / "pairs.jsonl"), tmp_path / "run"
    argv = ["overopt", "--data", str(data), "--out", str(out), "--encoder", str(tiny_bert_rm_dir),
            "--prompts", "4", "--candidates", "20", "--edited", "6", "--label-noise", "0.25",
            "--proxy-fraction", "1.0", "--batch-size", "8"]  # fmt: skip
    assert main(argv) == 0
    summary = json.loads((out / "overopt_summary.json").read_text())
    regime = summary["regimes"]["noise25"]
    expected = {"base", "refined", "conservative", "laplace", "laplace_lcb",
                "ensemble", "ensemble_lcb", "gold"}  # fmt: skip
    assert set(regime["proxies"]) == expected
    assert set(regime["paired_at_max_kl"]) == {
        f"{p}_minus_base" for p in expected - {"base", "gold"}
    }
    printed = capsys.readouterr().out
    base = regime["proxies"]["base"]
    assert f"peak {base['gold_peak']:+.4f} at KL {base['kl_at_peak']:.2f}" in printed
    assert (out / "overopt-noise25.png").read_bytes()[:4] == b"\x89PNG"


def test_user_errors_exit_2(tmp_path, capsys):
    data = _write_pairs(tmp_path / "pairs.jsonl")
    argv = ["overopt", "--data", str(data), "--out", str(tmp_path / "o")]
    assert main([*argv, "--prompts", "24"]) == 2
    assert "lower --prompts" in capsys.readouterr().err
    assert main([*argv, "--label-noise", "0.7"]) == 2
    assert "--label-noise must" in capsys.readouterr().err
