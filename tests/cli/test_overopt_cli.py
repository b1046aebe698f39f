"""`ebrm overopt`: --help, a tiny end-to-end run on tiny precomputed models, user errors."""

from __future__ import annotations

import json

import pytest
import torch

from ebrm.cli import main
from ebrm.data.types import Conversation


def test_help(capsys):
    assert main(["overopt", "--help"]) == 0
    text = capsys.readouterr().out
    for option in ("--data", "--out", "--gold", "--proxy", "--ebrm", "--prompts", "--candidates"):
        assert option in text


def _write_pairs(path, n=12):
    rows = [
        {
            "chosen": f"\n\nHuman: question {i} about cats?\n\nAssistant: a kind answer {i}.",
            "rejected": f"\n\nHuman: question {i} about cats?\n\nAssistant: go away {i}",
        }
        for i in range(n)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture(scope="module")
def tiny_ebrm_on_proxy(tmp_path_factory, tiny_rm_dir):
    from tests.integrations.tiny_ebrm import make_tiny_ebrm

    return make_tiny_ebrm(tmp_path_factory.mktemp("overopt-cli") / "ebrm", tiny_rm_dir)


def test_end_to_end_with_given_models(tmp_path, tiny_bert_rm_dir, tiny_rm_dir, tiny_ebrm_on_proxy):
    from ebrm.rm import BaseRewardModel

    data, out = _write_pairs(tmp_path / "pairs.jsonl"), tmp_path / "run"
    argv = ["overopt", "--data", str(data), "--out", str(out), "--gold", str(tiny_bert_rm_dir),
            "--proxy", str(tiny_rm_dir), "--ebrm", str(tiny_ebrm_on_proxy),
            "--prompts", "4", "--candidates", "5", "--batch-size", "8"]  # fmt: skip
    assert main(argv) == 0
    assert (out / "overopt.png").read_bytes()[:4] == b"\x89PNG"
    result = json.loads((out / "overopt_curves.json").read_text())
    assert set(result["curves"]) == {"base", "refined", "conservative", "gold"}
    assert result["pool"] == {**result["pool"], "prompts": 4, "candidates": 5}

    # independent gold scores of the pool, from the gold RM itself
    pool = json.loads((out / "pool.json").read_text())["prompts"]
    gold_rm = BaseRewardModel.from_pretrained(str(tiny_bert_rm_dir), max_length=128)
    convs = [Conversation.from_prompt(p["prompt"], r) for p in pool for r in p["responses"]]
    _, gold = gold_rm.embed_conversations(convs)
    gold = gold.reshape(4, 5).double()
    for curve in result["curves"].values():
        assert curve["best_of_n"][0]["gold"] == pytest.approx(float(gold.mean()), abs=1e-5)
        assert len(curve["best_of_n"]) == 5
        assert curve["kl_regularised"][0]["beta"] is None  # beta = inf: the reference policy
    best = result["curves"]["gold"]["best_of_n"][-1]["gold"]
    assert best == pytest.approx(float(gold.max(1).values.mean()), abs=1e-5)
    for name in ("base", "refined", "conservative"):
        assert result["curves"][name]["best_of_n"][-1]["gold"] <= best + 1e-9
    assert all(p["sources"][:2] == ["chosen", "rejected"] for p in pool)
    from safetensors.torch import load_file

    scores = load_file(str(out / "pool_scores.safetensors"))
    assert torch.allclose(scores["gold"].double(), gold, atol=1e-5)
    assert set(result["paired_at_max_kl"]) == {"refined_minus_base", "conservative_minus_base"}


def test_user_errors_exit_2(tmp_path, tiny_ebrm_on_proxy, capsys):
    data = _write_pairs(tmp_path / "pairs.jsonl")
    argv = ["overopt", "--data", str(data), "--out", str(tmp_path / "o"),
            "--ebrm", str(tiny_ebrm_on_proxy)]  # fmt: skip
    assert main(argv) == 2
    assert main([*argv[:5], "--gold", str(tmp_path), "--proxy", str(tmp_path),
                 "--prompts", "50"]) == 2  # fmt: skip
