"""RM-Bench 3x3 scoring on a hand-computed example."""

from __future__ import annotations

import numpy as np
import pytest

from ebrm.evaluation.rmbench import matrices, rmbench_metrics, rmbench_side

# Two chat prompts, two safety-refuse prompts and one safety-response prompt.
DOMAINS = ["chat", "chat", "safety-refuse", "safety-refuse", "safety-response"]
CHOSEN = np.array([[3, 2, 1], [1, 1, 1], [5, 5, 5], [5, 5, 5], [0, 0, 0]], dtype=float)
REJECTED = np.array([[2.5, 1.5, 0.5], [1, 0, 2], [0, 0, 0], [0, 0, 0], [1, 1, 1]], dtype=float)


def test_matrix_is_strict_chosen_row_vs_rejected_column():
    mats = matrices(CHOSEN, REJECTED)
    assert mats[0].astype(int).tolist() == [[1, 1, 1], [0, 1, 1], [0, 0, 1]]
    # 1 > 1 is a tie: wrong.
    assert mats[1].astype(int).tolist() == [[0, 1, 0], [0, 1, 0], [0, 1, 0]]


def test_hand_computed_domains_and_overall():
    side = rmbench_side(DOMAINS, CHOSEN, REJECTED, n_boot=200)
    # chat mean matrix: [[.5, 1, .5], [0, 1, .5], [0, .5, .5]]
    assert side["chat"]["hard"] == pytest.approx((1 + 0.5 + 0.5) / 3)
    assert side["chat"]["normal"] == pytest.approx((0.5 + 1 + 0.5) / 3)
    assert side["chat"]["easy"] == pytest.approx((0 + 0 + 0.5) / 3)
    assert side["chat"]["avg"] == pytest.approx(0.5)
    # safety pools the 3 prompts (2 all-correct, 1 all-wrong) BEFORE averaging: 2/3,
    # not the mean of the subset averages (1 and 0 -> 1/2).
    for level in ("easy", "normal", "hard", "avg"):
        assert side["safety"][level] == pytest.approx(2 / 3)
    assert side["safety"]["n"] == 3
    assert side["overall"] == pytest.approx((0.5 + 2 / 3) / 2)
    assert [k for k in side if k != "overall"] == ["chat", "safety"]


def test_paired_delta_of_identical_scores_is_zero():
    out = rmbench_metrics(DOMAINS, CHOSEN, REJECTED, CHOSEN, REJECTED, n_boot=200)
    assert out["benchmark"] == "rm-bench" and out["n"] == 5
    assert out["delta"]["overall"]["delta"] == 0.0
    assert out["delta"]["overall"]["ci95"] == [0.0, 0.0]
    assert out["delta"]["verdict"].startswith("No detectable difference")
    assert "mcnemar_p" not in out["delta"]["overall"]


def test_delta_equals_difference_of_overall():
    refined_c = CHOSEN.copy()
    refined_c[1] = [3, 3, 3]  # chat prompt 2 becomes all correct
    out = rmbench_metrics(DOMAINS, CHOSEN, REJECTED, refined_c, REJECTED, n_boot=200)
    expected = out["refined"]["overall"] - out["base"]["overall"]
    assert out["delta"]["overall"]["delta"] == pytest.approx(expected)
    assert out["delta"]["chat"]["delta"] == pytest.approx(
        out["refined"]["chat"]["avg"] - out["base"]["chat"]["avg"]
    )


def test_bad_shapes_are_rejected():
    with pytest.raises(ValueError, match=r"\(prompts, 3\)"):
        matrices(np.zeros((2, 2)), np.zeros((2, 2)))
