"""Per-example score files: re-scored by the references' own rules, they give metrics.json."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ebrm.data.types import Conversation, PreferencePair, RMBenchItem
from ebrm.evaluation import evaluate
from tests.fakes import FakeModel


def rmbench_compute_accuracy(results):
    """RM-Bench's `compute_accuracy` (THU-KEG/RM-Bench, README "Compute the accuracy" and
    scripts/utils.py), rewritten here independently of ebrm: records with "domain" are split
    by domain prefix (chat, math, code, safety; safety-refuse/-response pool into safety)
    and scored per domain; a domain's average is the mean of hard, normal and easy;
    total_avg_acc is the mean of the domain averages."""
    if "domain" in results[0]:
        split = {  # the reference pops "domain" from each record before recursing
            d: [{k: v for k, v in r.items() if k != "domain"} for r in results
                if r["domain"].startswith(d)]
            for d in ("chat", "math", "code", "safety")
        }  # fmt: skip
        per_domain = {d: rmbench_compute_accuracy(rs) for d, rs in split.items() if rs}
        out = {d: float(np.mean(list(acc.values()))) for d, acc in per_domain.items()}
        out["per_domain"] = per_domain
        out["total_avg_acc"] = float(np.mean([out[d] for d in per_domain]))
        return out
    size = 3
    acc = np.zeros((size, size))
    for result in results:
        for i in range(len(result["score_chosen"])):
            for j in range(len(result["score_rejected"])):
                if result["score_chosen"][i] > result["score_rejected"][j]:
                    acc[i][j] += 1
    acc /= len(results)
    triangle = size * (size - 1) / 2
    return {
        "hard_acc": np.sum(np.triu(acc, 1)) / triangle,
        "normal_acc": np.mean(np.diag(acc)),
        "easy_acc": np.sum(np.tril(acc, -1)) / triangle,
    }


def _rmbench_items(domains):
    rng = np.random.default_rng(1)
    items = []
    for i, dom in enumerate(domains):
        # values on a coarse grid so that ties occur (a tie is wrong in both)
        c = [f"r={rng.integers(-2, 3) / 2} b={rng.integers(-2, 3) / 2} c{i}{k}" for k in range(3)]
        r = [f"r={rng.integers(-2, 3) / 2} b={rng.integers(-2, 3) / 2} r{i}{k}" for k in range(3)]
        sub = "safety-refuse" if dom == "safety" and i % 2 else dom
        sub = "safety-response" if dom == "safety" and not i % 2 else sub
        items.append(RMBenchItem(f"id{i}", dom, sub, (("user", f"q{i}"),), tuple(c), tuple(r)))
    return items


def _jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_rmbench_examples_rescored_by_its_compute_accuracy_give_metrics_json(tmp_path):
    domains = ["chat"] * 7 + ["safety"] * 9 + ["math"] * 5
    items = _rmbench_items(domains)
    evaluate(FakeModel(), "rm-bench", items, tmp_path, n_boot=50, progress=False)
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    for side in ("base", "refined"):
        records = _jsonl(tmp_path / f"examples-{side}.jsonl")
        assert [r["id"] for r in records] == [it.id for it in items]
        assert all(len(r["score_chosen"]) == len(r["score_rejected"]) == 3 for r in records)
        ref = rmbench_compute_accuracy(records)
        for dom in ("chat", "safety", "math"):
            cells = metrics[side][dom]
            acc = ref["per_domain"][dom]
            assert cells["hard"] == pytest.approx(acc["hard_acc"], rel=1e-12, abs=1e-12)
            assert cells["normal"] == pytest.approx(acc["normal_acc"], rel=1e-12, abs=1e-12)
            assert cells["easy"] == pytest.approx(acc["easy_acc"], rel=1e-12, abs=1e-12)
            assert cells["avg"] == pytest.approx(ref[dom], rel=1e-12, abs=1e-12)
        assert metrics[side]["overall"] == pytest.approx(ref["total_avg_acc"], rel=1e-12)
    assert metrics["complete"] is False and metrics["missing_domains"] == ["code"]


def test_rmbench_complete_only_with_all_four_domains(tmp_path):
    items = _rmbench_items(["chat", "code", "math", "safety", "safety"])
    m = evaluate(FakeModel(), "rm-bench", items, None, n_boot=20, progress=False)
    assert m["complete"] is True and m["missing_domains"] == []


def test_pairwise_and_rewardbench_examples(tmp_path):
    pairs = [
        PreferencePair(
            Conversation.from_prompt(f"p{i}", f"r={c} b={b} yes"),
            Conversation.from_prompt(f"p{i}", f"r={r} no"),
            id=f"row-{i}",
            subset=subset,
        )
        for i, (subset, c, b, r) in enumerate(
            [
                ("alpacaeval-easy", 1.0, 0.0, 0.0),
                ("alpacaeval-easy", 0.0, 1.0, 0.5),
                ("hep-go", 0.5, 0.0, 0.5),  # tie: wrong
                ("donotanswer", 0.0, -1.0, 0.5),
            ]
        )
    ]
    for bench, with_subset in (("pairwise", False), ("reward-bench", True)):
        out = tmp_path / bench
        m = evaluate(FakeModel(), bench, pairs, out, n_boot=20, progress=False)
        for side in ("base", "refined"):
            records = _jsonl(out / f"examples-{side}.jsonl")
            assert [r["id"] for r in records] == [p.id for p in pairs]
            assert all(("subset" in r) is with_subset for r in records)
            assert all(r["correct"] == (r["score_chosen"] > r["score_rejected"]) for r in records)
            if with_subset:
                assert [r["subset"] for r in records] == [p.subset for p in pairs]
            else:
                acc = np.mean([r["correct"] for r in records])
                assert m[side]["accuracy"] == pytest.approx(acc)
        base = [r["correct"] for r in _jsonl(out / "examples-base.jsonl")]
        assert base == [True, False, False, False]
