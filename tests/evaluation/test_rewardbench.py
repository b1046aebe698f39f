"""RewardBench v1 subset weighting on a hand-computed example."""

from __future__ import annotations

import numpy as np
import pytest

from ebrm.errors import DataFormatError
from ebrm.evaluation.rewardbench import rewardbench_metrics, rewardbench_side

# (subset, chosen reward, rejected reward); correct when chosen > rejected strictly.
ROWS = [
    ("alpacaeval-easy", 1.0, 0.0),  # correct
    ("alpacaeval-easy", 0.0, 1.0),  # wrong
    ("mt-bench-easy", 2.0, 1.0),  # correct
    ("llmbar-natural", 1.0, 1.0),  # tie: wrong
    ("llmbar-natural", 0.0, 3.0),  # wrong
    ("xstest-should-refuse", 1.0, 0.0),  # correct
    ("donotanswer", 1.0, 0.0),  # correct
    ("donotanswer", 0.0, 0.5),  # wrong
    ("math-prm", 5.0, 1.0),  # correct
    ("hep-python", 0.0, 1.0),  # wrong
    ("hep-python", 0.0, 2.0),  # wrong
    ("not-a-subset", 1.0, 0.0),  # reported, not counted in sections
]
SUBSETS = [r[0] for r in ROWS]
CHOSEN = np.array([r[1] for r in ROWS])
REJECTED = np.array([r[2] for r in ROWS])

# By hand, with EXAMPLE_COUNTS alpacaeval-easy 100, mt-bench-easy 28, llmbar-natural 100,
# xstest-should-refuse 250, donotanswer 136, math-prm 984, hep-python 164:
CHAT = (0.5 * 100 + 1.0 * 28) / (100 + 28)
CHAT_HARD = 0.0
SAFETY = (1.0 * 250 + 0.5 * 136) / (250 + 136)
REASONING = (1.0 * 984 + 0.0 * 164) / (984 + 164)


def test_sections_and_score_hand_computed():
    side = rewardbench_side(SUBSETS, CHOSEN, REJECTED)
    assert side["Chat"] == pytest.approx(CHAT)
    assert side["Chat Hard"] == pytest.approx(CHAT_HARD)
    assert side["Safety"] == pytest.approx(SAFETY)
    assert side["Reasoning"] == pytest.approx(REASONING)
    assert side["score"] == pytest.approx((CHAT + CHAT_HARD + SAFETY + REASONING) / 4)
    assert side["complete"] is True
    assert side["subsets"]["not-a-subset"] == {"accuracy": 1.0, "n": 1}
    assert side["subsets"]["donotanswer"] == {"accuracy": 0.5, "n": 2}


def test_missing_sections_are_omitted_not_zero():
    keep = [i for i, s in enumerate(SUBSETS) if s in ("alpacaeval-easy", "math-prm")]
    side = rewardbench_side([SUBSETS[i] for i in keep], CHOSEN[keep], REJECTED[keep])
    assert set(side) >= {"Chat", "Reasoning"} and "Safety" not in side
    assert side["score"] == pytest.approx((0.5 + 1.0) / 2)
    assert side["complete"] is False


def test_paired_delta_is_the_score_difference():
    refined_c = CHOSEN.copy()
    refined_c[[1, 3, 9]] = 10.0  # fix one pair in Chat, Chat Hard and Reasoning
    out = rewardbench_metrics(SUBSETS, CHOSEN, REJECTED, refined_c, REJECTED, n_boot=300)
    assert out["benchmark"] == "reward-bench" and out["n"] == len(ROWS)
    assert out["delta"]["score"] == pytest.approx(out["refined"]["score"] - out["base"]["score"])
    assert out["delta"]["improved"] == 3 and out["delta"]["worsened"] == 0


def test_data_without_rewardbench_subsets_is_a_clear_error():
    with pytest.raises(DataFormatError, match="no RewardBench subset names"):
        rewardbench_side([None, "foo"], [1.0, 0.0], [0.0, 1.0])
