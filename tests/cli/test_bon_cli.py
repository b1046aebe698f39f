"""`ebrm bon`: --help, an end-to-end run on a tiny real refined model, user errors."""

from __future__ import annotations

import json

import pytest

from ebrm.cli import main
from ebrm.data.types import Conversation


def test_help(capsys):
    assert main(["bon", "--help"]) == 0
    text = capsys.readouterr().out
    assert "--candidates" in text and "--reward" in text and "--mode " not in text


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory, tiny_rm_dir):
    from tests.integrations.tiny_ebrm import make_tiny_ebrm

    return make_tiny_ebrm(tmp_path_factory.mktemp("bon-cli") / "model", tiny_rm_dir)


def test_picks_the_best_candidate_by_the_chosen_reward(tmp_path, tiny_model):
    from ebrm.model import EnergyRewardModel

    rows = [
        {
            "prompt": "How do I boil an egg?",
            "candidates": ["Boil it.", "Put it in water 9 min.", "?"],
        },
        {"prompt": "Say hi", "candidates": ["hi", "hello there"]},
    ]
    src, out = tmp_path / "cands.jsonl", tmp_path / "best.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    argv = [
        "bon",
        "--model",
        str(tiny_model),
        "--candidates",
        str(src),
        "--out",
        str(out),
        "--reward",
        "conservative",
        "--device",
        "cpu",
    ]
    assert main(argv) == 0
    got = [json.loads(line) for line in out.read_text().splitlines()]
    model = EnergyRewardModel.from_pretrained(tiny_model, device="cpu")
    for row, result in zip(rows, got, strict=True):
        convs = [Conversation.from_prompt(row["prompt"], c) for c in row["candidates"]]
        values = model.score(convs).conservative.tolist()
        assert result["rewards"] == pytest.approx(values, abs=1e-5)
        assert result["best_index"] == values.index(max(values))
        assert result["best"] == row["candidates"][result["best_index"]]
        assert result["reward"] == "conservative"
        assert [s["conservative"] for s in result["scores"]] == result["rewards"]


def test_bad_input_is_a_user_error(tmp_path, capsys, tiny_model):
    src = tmp_path / "bad.jsonl"
    src.write_text('{"prompt": "p", "candidates": "not a list"}\n')
    argv = [
        "bon",
        "--model",
        str(tiny_model),
        "--candidates",
        str(src),
        "--out",
        str(tmp_path / "o"),
    ]
    assert main(argv) == 2
    assert "line 1: 'candidates' must be a non-empty list" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
