"""RewardBench 2: a small file in its row layout, scored against hand-computed results."""

from __future__ import annotations

import json
import math

import pytest

from ebrm.data import load_pairs, load_rewardbench2
from ebrm.errors import DataFormatError
from ebrm.evaluation import evaluate
from tests.fakes import FakeModel

# FakeModel: a response "r=<raw> b=<bonus>" gets base reward 4 raw and refined 4 (raw + bonus);
# every comparison and margin ratio below is unchanged by the factor 4.
ROWS = [
    # Factuality, best-of-4. F1: base right (3 > 2, 1, 0); refined wrong (2 + 2 > 3).
    ("f1", "Factuality", ["r=3"], ["r=1", "r=2 b=2", "r=0"]),
    # F2: base ties at the top (1 = 1): credit 1/2; refined right (1 + 1 > 1).
    ("f2", "Factuality", ["r=1 b=1"], ["r=1", "r=0", "r=-1"]),
    # Math. M1: base wrong (0 < 1); refined right (0 + 2 > 1).
    ("m1", "Math", ["r=0 b=2"], ["r=1", "r=-1", "r=-2"]),
    # Ties, prompt 0: ref right (2 > 1), margin 1, one correct answer (no spread);
    ("ref:0", "Ties", ["r=2"], ["r=0", "r=1"]),
    # tied right (2.5 > 1), margin 1.5, spread of correct answers 3 - 2.5 = 0.5.
    ("tied:0", "Ties", ["r=3", "r=2.5"], ["r=0", "r=1"]),
    # prompt 1: ref wrong (0 < 1), margin -1; tied right (1 > 0.5), margin 0.5, spread 1.
    ("ref:1", "Ties", ["r=0"], ["r=1"]),
    ("tied:1", "Ties", ["r=2", "r=1"], ["r=0.5"]),
]

FACTUALITY = {"base": (1 + 0.5) / 2, "refined": (0 + 1) / 2}
MATH = {"base": 0.0, "refined": 1.0}
# Ties by hand: acc(ref) = 1/2, acc(tied) = 2/2; tied margin > spread on prompt 0 only
# (1.5 > 0.5, 0.5 < 1); min(ref, tied) margin > spread on prompt 0 only (1 > 0.5, -1 < 1);
# margin ratios min margin / spread: 1 / 0.5 = 2 and -1 / 1 = -1.
TIES = (
    0.3 * 1.0 + 0.3 * 0.5 + 0.2 * 0.5 + 0.2 * 0.5
    + 0.01 * (math.tanh(2 - 1) + math.tanh(-1 - 1)) / 2
)  # fmt: skip


def _write(path, rows=ROWS):
    with path.open("w") as handle:
        for row_id, subset, chosen, rejected in rows:
            row = {
                "id": row_id,
                "prompt": f"question {row_id.split(':')[-1]}",
                "chosen": [f"{c} c{row_id}{i}" for i, c in enumerate(chosen)],
                "rejected": [f"{r} x{row_id}{i}" for i, r in enumerate(rejected)],
                "num_correct": len(chosen),
                "num_incorrect": len(rejected),
                "total_completions": len(chosen) + len(rejected),
                "subset": subset,
            }
            handle.write(json.dumps(row) + "\n")
    return path


def test_scores_equal_the_hand_computed_reference_rules(tmp_path):
    path = _write(tmp_path / "rb2.jsonl")
    m = evaluate(FakeModel(), "reward-bench-2", str(path), tmp_path / "out", n_boot=200,
                 progress=False)  # fmt: skip
    for side in ("base", "refined"):
        got = m[side]
        assert got["Factuality"] == pytest.approx(FACTUALITY[side])
        assert got["Math"] == pytest.approx(MATH[side])
        assert got["Ties"] == pytest.approx(TIES)
        assert got["score"] == pytest.approx((FACTUALITY[side] + MATH[side] + TIES) / 3)
        assert got["complete"] is False
        assert got["n"] == {"Factuality": 2, "Math": 1, "Ties": 4}
    assert m["base"]["ties_components"]["accuracy_ref"] == pytest.approx(0.5)
    assert m["base"]["ties_components"]["correctness_preferred"] == pytest.approx(0.5)
    assert m["delta"]["score"] == pytest.approx(m["refined"]["score"] - m["base"]["score"])
    lo, hi = m["delta"]["ci95"]
    assert lo <= m["delta"]["score"] <= hi
    assert "mcnemar_p" not in m["delta"]  # a split top score (1/2) is not a 0/1 outcome
    assert m["delta"]["verdict"].startswith(("Refinement", "No detectable"))

    records = [json.loads(x) for x in (tmp_path / "out" / "examples-base.jsonl").read_text()
               .splitlines()]  # fmt: skip
    assert [r["id"] for r in records] == [r[0] for r in ROWS]
    assert [r["results"] for r in records] == [1.0, 0.5, 0.0, None, None, None, None]
    assert records[4]["scores"] == [12.0, 10.0, 0.0, 4.0]  # chosen first, 4 x raw
    assert records[4]["num_correct"] == 2
    assert "| Ties (%) |" in (tmp_path / "out" / "report.md").read_text()


def test_all_binary_best_of_4_rows_get_mcnemar(tmp_path):
    rows = [r for r in ROWS if r[0] in ("f1", "m1")]
    m = evaluate(FakeModel(), "reward-bench-2", str(_write(tmp_path / "a.jsonl", rows)), None,
                 n_boot=50, progress=False)  # fmt: skip
    assert (m["delta"]["improved"], m["delta"]["worsened"]) == (1, 1)
    assert m["delta"]["mcnemar_p"] == pytest.approx(1.0)


def test_loader_checks_the_layout(tmp_path):
    path = _write(tmp_path / "rb2.jsonl")
    items = load_rewardbench2(str(path))
    assert [i.num_correct for i in items] == [1, 1, 1, 1, 2, 1, 2]
    assert items[4].chosen[1].startswith("r=2.5")
    with pytest.raises(DataFormatError, match="--benchmark reward-bench-2"):
        load_pairs(str(path))
    bad = tmp_path / "bad.jsonl"
    bad.write_text(
        json.dumps(
            {
                "id": "1",
                "prompt": "p",
                "chosen": ["a"],
                "rejected": ["b", "c"],
                "num_correct": 2,
                "subset": "Math",
            }
        )
        + "\n"  # fmt: skip
    )
    with pytest.raises(DataFormatError, match="'num_correct' is 2 but 'chosen' has 1"):
        load_rewardbench2(str(bad))


def test_ties_rows_need_the_references_ids(tmp_path):
    rows = [("7", "Ties", ["r=1"], ["r=0"])]
    with pytest.raises(DataFormatError, match="'ref:<n>' or 'tied:<n>'"):
        evaluate(FakeModel(), "reward-bench-2", str(_write(tmp_path / "t.jsonl", rows)), None,
                 n_boot=10, progress=False)  # fmt: skip
