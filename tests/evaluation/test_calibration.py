"""ECE, Brier and reliability data against a naive computation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ebrm.evaluation.calibration import (
    brier_score,
    bt_probability,
    calibration_metrics,
    expected_calibration_error,
    reliability,
)


def _naive_ece(p, n_bins=15):
    # Both orders of every pair, loop over bins.
    probs = list(p) + [1 - v for v in p]
    outcomes = [1.0] * len(p) + [0.0] * len(p)
    total = 0.0
    for b in range(n_bins):
        lo, hi = b / n_bins, (b + 1) / n_bins
        members = [i for i, v in enumerate(probs) if lo <= v < hi or (b == n_bins - 1 and v == 1.0)]
        if not members:
            continue
        conf = sum(probs[i] for i in members) / len(members)
        acc = sum(outcomes[i] for i in members) / len(members)
        total += len(members) / len(probs) * abs(acc - conf)
    return total


def test_ece_and_brier_match_naive():
    rng = np.random.default_rng(0)
    p = rng.beta(2, 1, size=300)
    p[:3] = [0.0, 1.0, 0.5]
    assert expected_calibration_error(p) == pytest.approx(_naive_ece(p))
    assert brier_score(p) == pytest.approx(sum((1 - v) ** 2 for v in p) / len(p))


def test_calibrated_probabilities_have_small_ece():
    rng = np.random.default_rng(1)
    q = rng.random(20000)
    a_wins = rng.random(20000) < q
    p_chosen = np.where(a_wins, q, 1 - q)  # the truly chosen side's probability
    assert expected_calibration_error(p_chosen) < 0.02
    # 99% confident but right only half the time: ECE = |0.5 - 0.99|.
    overconfident = np.where(np.arange(1000) % 2 == 0, 0.99, 0.01)
    assert expected_calibration_error(overconfident) == pytest.approx(0.49)


def test_reliability_is_symmetric_and_counts_both_orders():
    p = np.array([0.9, 0.8, 0.3])
    rel = reliability(p)
    assert sum(rel["count"]) == 6
    assert rel["count"] == rel["count"][::-1]
    k = int(0.9 * 15)
    assert rel["mean_confidence"][k] == pytest.approx(0.9) and rel["accuracy"][k] == 1.0
    assert calibration_metrics(p)["reliability"] == rel


def test_bt_probability_is_the_logistic_of_raw_difference():
    got = bt_probability([2.0, -800.0, 0.0], [0.5, 800.0, 0.0])
    assert got[0] == pytest.approx(1 / (1 + math.exp(-1.5)))
    assert got[1] == pytest.approx(0.0) and got[2] == 0.5


def test_invalid_probabilities_are_rejected():
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        expected_calibration_error([1.2])
