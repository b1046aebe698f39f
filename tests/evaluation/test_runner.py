"""The runner against a fake model with known rewards: one pass, correct wiring, files."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from ebrm.data.types import Conversation, PreferencePair, RMBenchItem
from ebrm.errors import ConfigError, DataFormatError
from ebrm.evaluation import RefiningModel, Reward, Units, evaluate, evaluate_rewards
from ebrm.evaluation.calibration import expected_calibration_error
from ebrm.evaluation.metrics import mcnemar_exact
from tests.fakes import SCALE, FakeModel, parse


def _pairs():
    # (chosen raw, chosen bonus, rejected raw, rejected bonus)
    spec = [
        (1.0, 0.0, 0.0, 0.0),  # both right
        (0.0, 2.0, 1.0, 0.0),  # base wrong, refined right
        (0.5, 0.0, 0.5, 0.0),  # tie on both: wrong on both
        (2.0, -3.0, 1.0, 0.0),  # base right, refined wrong
        (0.0, 1.5, 1.0, 0.0),  # base wrong, refined right
        (3.0, 0.0, -1.0, 0.0),  # both right
    ]
    pairs = []
    for i, (cr, cb, rr, rb) in enumerate(spec):
        prompt = f"question {i % 3}"  # repeated prompts; one response repeated below
        pairs.append(
            PreferencePair(
                chosen=Conversation.from_prompt(prompt, f"r={cr} b={cb} chosen {i}"),
                rejected=Conversation.from_prompt(prompt, f"r={rr} b={rb} rejected"),
                id=str(i),
            )
        )
    return pairs, spec


def test_pairwise_runner_matches_a_direct_computation(tmp_path):
    pairs, spec = _pairs()
    model = FakeModel()
    metrics = evaluate(model, "pairwise", pairs, tmp_path / "out", n_boot=200, progress=False)

    # One pass over the unique responses only.
    unique = {c for p in pairs for c in (p.chosen, p.rejected)}
    assert model.base_rm.calls == 1 and len(model.base_rm.texts_seen) == len(unique)

    base_ok = [cr > rr for cr, _, rr, _ in spec]
    ref_ok = [cr + cb > rr + rb for cr, cb, rr, rb in spec]
    assert metrics["n"] == len(spec)
    assert metrics["base"]["accuracy"] == pytest.approx(np.mean(base_ok))
    assert metrics["refined"]["accuracy"] == pytest.approx(np.mean(ref_ok))
    assert metrics["delta"]["improved"] == 2 and metrics["delta"]["worsened"] == 1
    assert metrics["delta"]["mcnemar_p"] == pytest.approx(mcnemar_exact(2, 1))
    assert metrics["delta"]["verdict"].startswith("No detectable difference")
    assert metrics["base"]["ties"] == 1

    sig = lambda d: 1 / (1 + math.exp(-d))  # noqa: E731
    p_base = [sig(cr - rr) for cr, _, rr, _ in spec]  # raw units
    p_ref = [sig(SCALE * (cr + cb - rr - rb)) for cr, cb, rr, rb in spec]
    assert metrics["base"]["ece"] == pytest.approx(expected_calibration_error(p_base))
    assert metrics["refined"]["ece"] == pytest.approx(expected_calibration_error(p_ref))
    assert metrics["model"]["p_better"] == "posterior"

    out = tmp_path / "out"
    on_disk = json.loads((out / "metrics.json").read_text())
    assert on_disk["base"]["accuracy"] == metrics["base"]["accuracy"]
    assert set(on_disk) >= {"benchmark", "data", "n", "base", "refined", "delta"}
    report = (out / "report.md").read_text()
    for png in ("reward_distributions.png", "base_vs_refined.png", "reliability.png"):
        assert (out / png).stat().st_size > 1000
        assert f"({png})" in report
    assert metrics["delta"]["verdict"] in report


def test_fake_model_satisfies_the_protocols():
    from ebrm.evaluation import EmbeddingRM, TextRefiningModel

    model = FakeModel()
    assert isinstance(model, RefiningModel) and isinstance(model, TextRefiningModel)
    assert isinstance(model.base_rm, EmbeddingRM)


def test_other_reward_kinds_are_evaluated():
    pairs, spec = _pairs()
    # conservative = refined - 1 for every response: same ordering as refined.
    m = evaluate(
        FakeModel(), "pairwise", pairs, None, n_boot=50, progress=False, reward="conservative"
    )
    assert m["refined"]["accuracy"] == pytest.approx(
        np.mean([cr + cb > rr + rb for cr, cb, rr, rb in spec])
    )
    assert m["model"]["refined_reward"] == "conservative"
    with pytest.raises(ConfigError, match="Unknown reward 'best'"):
        evaluate(FakeModel(), "pairwise", pairs, None, reward="best")


def _items():
    rng = np.random.default_rng(0)
    items = []
    for i, dom in enumerate(["chat", "chat", "safety", "safety", "safety"]):
        c = [f"r={rng.normal():.3f} b={rng.normal():.3f} c{i}{k}" for k in range(3)]
        r = [f"r={rng.normal():.3f} b={rng.normal():.3f} r{i}{k}" for k in range(3)]
        sub = dom if dom == "chat" else ("safety-refuse" if i < 4 else "safety-response")
        items.append(RMBenchItem(str(i), dom, sub, (("user", f"q{i}"),), tuple(c), tuple(r)))
    return items


def _naive_levels(items, use_bonus):
    def score(text):
        raw, bonus = parse(text)
        return raw + bonus if use_bonus else raw

    out = {}
    for dom in ("chat", "safety"):
        mats = [
            [
                [float(score(it.chosen[i]) > score(it.rejected[j])) for j in range(3)]
                for i in range(3)
            ]
            for it in items
            if it.domain == dom
        ]
        m = np.mean(mats, axis=0)
        hard = np.mean([m[0][1], m[0][2], m[1][2]])
        normal = np.mean([m[0][0], m[1][1], m[2][2]])
        easy = np.mean([m[1][0], m[2][0], m[2][1]])
        out[dom] = (easy, normal, hard)
    return out


def test_rmbench_runner_wires_styles_like_a_naive_loop(tmp_path):
    items = _items()
    metrics = evaluate(FakeModel(), "rm-bench", items, tmp_path, n_boot=100, progress=False)
    for side, bonus in (("base", False), ("refined", True)):
        for dom, (easy, normal, hard) in _naive_levels(items, bonus).items():
            got = metrics[side][dom]
            assert (got["easy"], got["normal"], got["hard"]) == pytest.approx((easy, normal, hard))
        assert metrics[side]["overall"] == pytest.approx(
            np.mean([metrics[side][d]["avg"] for d in ("chat", "safety")])
        )
    for side in ("base", "refined"):  # the metrics.json contract: domains + "overall" only
        assert set(metrics[side]) == {"chat", "safety", "overall"}
        assert set(metrics[side]["chat"]) >= {"easy", "normal", "hard", "avg"}
    assert (tmp_path / "rmbench_heatmaps.png").exists()
    assert "rmbench_heatmaps.png" in (tmp_path / "report.md").read_text()


def test_rewardbench_file_in_its_schema(tmp_path):
    from tests.evaluation.test_rewardbench import CHAT, CHAT_HARD, REASONING, ROWS, SAFETY

    path = tmp_path / "rb.jsonl"
    with path.open("w") as handle:
        for i, (subset, c, r) in enumerate(ROWS):
            row = {
                "prompt": f"p{i}",
                "chosen": f"r={c} yes",
                "rejected": f"r={r} no",
                "subset": subset,
                "id": i,
            }
            handle.write(json.dumps(row) + "\n")
    metrics = evaluate(
        FakeModel(), "reward-bench", str(path), tmp_path / "o", n_boot=100, progress=False
    )
    base = metrics["base"]
    assert base["Chat"] == pytest.approx(CHAT)
    assert base["Chat Hard"] == pytest.approx(CHAT_HARD)
    assert base["Safety"] == pytest.approx(SAFETY)
    assert base["Reasoning"] == pytest.approx(REASONING)
    assert base["score"] == pytest.approx((CHAT + CHAT_HARD + SAFETY + REASONING) / 4)
    assert metrics["data"] == str(path)


def test_evaluate_rewards_rejects_bad_inputs():
    units = Units.of([0], [1])
    rewards = {"base": Reward.of([1.0, 0.0]), "refined": Reward.of([1.0, 0.0])}
    with pytest.raises(ConfigError, match="Unknown benchmark 'mmlu'"):
        evaluate_rewards("mmlu", units, rewards)
    with pytest.raises(ValueError, match="must include 'base'"):
        evaluate_rewards("pairwise", units, {"refined": rewards["refined"]})
    with pytest.raises(DataFormatError, match="no pairwise rows"):
        evaluate(FakeModel(), "pairwise", [], None)


def test_reference_rewards_get_their_own_side_and_paired_delta(tmp_path):
    # 4 pairs: rows (0, 1), (2, 3), ...; base right on pairs 0, 1; "ref" right on 0, 2, 3.
    base = [1.0, 0.0, 1.0, 0.0, 0.0, 1.0, 0.0, 1.0]
    ref = [1.0, 0.0, 0.0, 1.0, 1.0, 0.0, 1.0, 0.0]
    units = Units.of([0, 2, 4, 6], [1, 3, 5, 7], ids=["a", "b", "c", "d"])
    m = evaluate_rewards(
        "pairwise",
        units,
        {"base": Reward.of(base), "refined": Reward.of(base), "ref": Reward.of(ref)},
        out_dir=tmp_path,
        n_boot=50,
        make_figures=False,
    ).metrics
    assert m["rewards"] == ["base", "refined", "ref"]
    assert m["ref"]["accuracy"] == pytest.approx(3 / 4)
    assert m["deltas"]["ref"]["accuracy"] == pytest.approx(3 / 4 - 2 / 4)
    assert (m["deltas"]["ref"]["improved"], m["deltas"]["ref"]["worsened"]) == (2, 1)
    assert m["deltas"]["ref"]["verdict"].count("ref - base accuracy") == 1
    assert m["delta"] == m["deltas"]["refined"] and m["delta"]["accuracy"] == 0.0
    lines = (tmp_path / "examples-ref.jsonl").read_text().splitlines()
    assert [json.loads(x)["correct"] for x in lines] == [True, False, True, True]
    assert (
        "| metric | base | refined | ref | refined - base | ref - base |"
        in (tmp_path / "report.md").read_text()
    )


def _rewardbench_pairs(rows) -> list[PreferencePair]:
    """One RewardBench pair per (subset, chosen reward, rejected reward) row (FakeModel reads
    the reward from the text)."""
    return [
        PreferencePair(
            Conversation.from_prompt(f"p{i}", f"r={c} yes"),
            Conversation.from_prompt(f"p{i}", f"r={r} no"),
            id=str(i),
            subset=subset,
        )
        for i, (subset, c, r) in enumerate(rows)
    ]


def test_rewardbench_runner_reports_calibration():
    from tests.evaluation.test_rewardbench import ROWS

    pairs = _rewardbench_pairs(ROWS)
    m = evaluate(FakeModel(), "reward-bench", pairs, None, n_boot=50, progress=False)
    p_base = [1 / (1 + math.exp(-(c - r))) for _, c, r in ROWS]
    assert m["base"]["ece"] == pytest.approx(expected_calibration_error(p_base))
    assert "calibration" in m["refined"]


def test_refine_and_evaluate_with_a_real_energy_model(tmp_path):
    import torch

    from ebrm.energy.config import EnergyHeadConfig
    from ebrm.energy.head import EnergyHead
    from ebrm.energy.normalize import RewardNormalizer
    from ebrm.evaluation import refine_and_evaluate
    from ebrm.model import EnergyRewardModel
    from ebrm.refine.config import RefineConfig

    g = torch.Generator().manual_seed(0)
    emb = torch.randn(40, 8, generator=g)
    rewards = torch.randn(40, generator=g)
    chosen, rejected = torch.arange(0, 40, 2), torch.arange(1, 40, 2)
    torch.manual_seed(0)
    head = EnergyHead(EnergyHeadConfig(embedding_dim=8, reward_widths=(8,), joint_widths=(16,)))
    model = EnergyRewardModel(
        head.eval(), RewardNormalizer().fit(rewards), RefineConfig(grid_size=64), {}, {}
    )
    assert isinstance(model, RefiningModel)
    units = Units.of(chosen.numpy()[:15], rejected.numpy()[:15])  # rows 30..39 unused
    result = refine_and_evaluate(
        model, "pairwise", units, emb, rewards, out_dir=tmp_path, data="synthetic", n_boot=100
    )
    m = result.metrics
    c, r = chosen[:15], rejected[:15]
    assert m["base"]["accuracy"] == pytest.approx((rewards[c] > rewards[r]).double().mean().item())
    refined = model.refine(emb, rewards).reward
    assert m["refined"]["accuracy"] == pytest.approx(
        (refined[c] > refined[r]).double().mean().item()
    )
    p = model.p_better(emb[c], emb[r]).double().numpy()
    assert result.scores["refined"].p_chosen == pytest.approx(p, abs=1e-6)
    assert m["model"]["p_better"] == "posterior" and m["n"] == 15
    assert (tmp_path / "metrics.json").exists()


def test_rewardbench_report_has_a_per_subset_table(tmp_path):
    from tests.evaluation.test_rewardbench import ROWS

    pairs = _rewardbench_pairs(ROWS)
    evaluate(FakeModel(), "reward-bench", pairs, tmp_path, n_boot=50, progress=False)
    report = (tmp_path / "report.md").read_text()
    assert "## Per subset" in report
    # FakeModel's refined reward equals its base reward without a bonus: same accuracy
    for subset in {s for s, _, _ in ROWS}:
        rows = [(c, r) for s, c, r in ROWS if s == subset]
        acc = 100 * sum(c > r for c, r in rows) / len(rows)
        assert f"| {subset} | {len(rows)} | {acc:.1f} | {acc:.1f} | +0.0 |" in report


def test_no_calibration_text_where_none_was_computed(tmp_path):
    metrics = evaluate(FakeModel(), "rm-bench", _items(), tmp_path, n_boot=50, progress=False)
    assert not any("calibration" in metrics[side] for side in ("base", "refined"))
    assert "calibration" not in (tmp_path / "report.md").read_text()
