"""`ebrm eval`: --help, user errors, and an end-to-end run on a tiny real refined model."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from ebrm.cli import main


def _tiny_ebrm(out, base_rm_dir):
    from ebrm.energy.config import EnergyHeadConfig
    from ebrm.energy.head import EnergyHead
    from ebrm.energy.normalize import RewardNormalizer
    from ebrm.model import EnergyRewardModel
    from ebrm.refine.config import RefineConfig
    from ebrm.rm.adapter import BaseRewardModel

    rm = BaseRewardModel.from_pretrained(str(base_rm_dir), device="cpu", max_length=128)
    torch.manual_seed(0)
    head = EnergyHead(
        EnergyHeadConfig(embedding_dim=rm.hidden_size, reward_widths=(8, 16), joint_widths=(32, 16))
    )
    _, rewards = rm.embed_texts([f"calibration text {i}" for i in range(16)])
    normalizer = RewardNormalizer(scale=4.0).fit(rewards)
    model = EnergyRewardModel(
        head, normalizer, RefineConfig(method="mean", grid_size=64), rm.provenance(), {}
    )
    model.save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def tiny_ebrm_dir(tmp_path_factory, tiny_bert_rm_dir):
    return _tiny_ebrm(tmp_path_factory.mktemp("ebrm"), tiny_bert_rm_dir)


def test_eval_help(capsys):
    assert main(["eval", "--help"]) == 0
    text = capsys.readouterr().out
    for option in (
        "--model",
        "--benchmark",
        "--data",
        "--out",
        "--batch-size",
        "--seed",
        "--device",
    ):
        assert option in text


def test_unknown_benchmark_is_a_user_error(tmp_path, capsys):
    code = main(["eval", "--model", str(tmp_path), "--benchmark", "mmlu", "--data", "x",
                 "--out", str(tmp_path / "o")])  # fmt: skip
    assert code == 2
    assert "--benchmark: 'mmlu' is not one of" in capsys.readouterr().err


def test_eval_pairwise_end_to_end(tmp_path, tiny_ebrm_dir, capsys):
    from ebrm.data.types import Conversation
    from ebrm.model import EnergyRewardModel

    rows = [
        {"prompt": f"question {i}", "chosen": f"a helpful answer {i} " * (1 + i % 3),
         "rejected": f"no {i}"}
        for i in range(12)
    ]  # fmt: skip
    data = tmp_path / "pairs.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "report"
    code = main(["eval", "--model", str(tiny_ebrm_dir), "--benchmark", "pairwise",
                 "--data", str(data), "--out", str(out), "--n-boot", "200", "--no-progress",
                 "--device", "cpu"])  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["benchmark"] == "pairwise" and metrics["n"] == 12
    assert metrics["delta"]["verdict"].split(":")[0] in printed

    # Independent check: score chosen and rejected separately with the model itself.
    erm = EnergyRewardModel.from_pretrained(tiny_ebrm_dir, device="cpu")
    chosen = erm.score([Conversation.from_prompt(r["prompt"], r["chosen"]) for r in rows])
    rejected = erm.score([Conversation.from_prompt(r["prompt"], r["rejected"]) for r in rows])
    base_acc = float(np.mean((chosen.base > rejected.base).numpy()))
    ref_acc = float(np.mean((chosen.reward > rejected.reward).numpy()))
    assert metrics["base"]["accuracy"] == pytest.approx(base_acc)
    assert metrics["refined"]["accuracy"] == pytest.approx(ref_acc)
    assert metrics["model"]["p_better"] == "posterior"
    assert 0.0 <= metrics["refined"]["ece"] <= 1.0
    for name in ("report.md", "reliability.png", "reward_distributions.png"):
        assert (out / name).exists()


@pytest.mark.shared_data
def test_eval_rmbench_on_shared_data(tmp_path, tiny_ebrm_dir, tiny_bert_rm_dir, shared_data):
    out = tmp_path / "rmb"
    code = main(["eval", "--model", str(tiny_ebrm_dir), "--benchmark", "rm-bench",
                 "--data", str(shared_data / "rm-bench" / "safety-response_filtered.json"),
                 "--out", str(out), "--limit", "4", "--n-boot", "200", "--no-progress",
                 "--no-plots", "--base-rm", str(tiny_bert_rm_dir), "--reward", "mode"])  # fmt: skip
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n"] == 4 and metrics["model"]["refined_reward"] == "mode"
    assert not list(out.glob("*.png"))
    for side in ("base", "refined"):
        assert set(metrics[side]) == {"safety", "overall"}
        assert metrics[side]["overall"] == pytest.approx(metrics[side]["safety"]["avg"])
        lines = (out / f"examples-{side}.jsonl").read_text().splitlines()
        assert len(lines) == 4 and set(json.loads(lines[0])) == {
            "id", "domain", "score_chosen", "score_rejected"
        }  # fmt: skip
    assert metrics["complete"] is False


def test_eval_reward_bench_2_end_to_end(tmp_path, tiny_ebrm_dir, capsys):
    from ebrm.data.types import Conversation
    from ebrm.model import EnergyRewardModel

    rows = [
        {"id": str(i), "prompt": f"question {i}", "subset": "Focus", "num_correct": 1,
         "chosen": [f"a helpful answer {i} " * (1 + i % 3)],
         "rejected": [f"no {i}", f"maybe {i}", f"what {i} " * (i % 4 + 1)]}
        for i in range(6)
    ]  # fmt: skip
    data = tmp_path / "rb2.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "rb2"
    code = main(["eval", "--model", str(tiny_ebrm_dir), "--benchmark", "reward-bench-2",
                 "--data", str(data), "--out", str(out), "--n-boot", "100", "--no-progress",
                 "--no-plots", "--device", "cpu"])  # fmt: skip
    assert code == 0
    assert "Focus" in capsys.readouterr().out
    metrics = json.loads((out / "metrics.json").read_text())
    erm = EnergyRewardModel.from_pretrained(tiny_ebrm_dir, device="cpu")
    for side, field in (("base", "base"), ("refined", "reward")):
        won = []
        for r in rows:  # best-of-4 by hand: the chosen strictly above the three rejected
            texts = r["chosen"] + r["rejected"]
            got = getattr(erm.score([Conversation.from_prompt(r["prompt"], t) for t in texts]),
                          field)  # fmt: skip
            won.append(float(got[0] > got[1:].max()))
        assert metrics[side]["Focus"] == pytest.approx(np.mean(won))
        assert metrics[side]["complete"] is False
    lines = (out / "examples-base.jsonl").read_text().splitlines()
    assert [json.loads(x)["id"] for x in lines] == [r["id"] for r in rows]
