"""Uncertainty metrics: formulas by loop, pairing on the same resamples, the std shift."""

import math

import numpy as np
import pytest

from ebrm.evaluation.calibration import expected_calibration_error
from ebrm.evaluation.uncertainty import (
    AXES,
    _ece_fast,
    auroc,
    axis_verdicts,
    compare_rewards,
    nll,
    std_shift,
    strip_replicates,
    uncertainty_metrics,
)


def _pairs(n=300, seed=0, sharp=2.0):
    rng = np.random.default_rng(seed)
    logit = rng.normal(0, sharp, n)
    chosen_first = rng.random(n) < 1 / (1 + np.exp(-logit))
    p = np.where(chosen_first, 1 / (1 + np.exp(-logit)), 1 / (1 + np.exp(logit)))
    return (p > 0.5).astype(float), p


def test_nll_and_ece_against_loops():
    _, p = _pairs()
    assert nll(p) == pytest.approx(sum(-math.log(v) for v in p) / len(p))
    assert _ece_fast(p, 15) == pytest.approx(expected_calibration_error(p, n_bins=15))


def test_identical_rewards_differ_by_exactly_zero_on_every_axis():
    correct, p = _pairs()
    comp = compare_rewards({"base": (correct, p), "copy": (correct, p.copy())}, n_boot=200)
    for axis in AXES:
        d = comp["vs_baseline"]["copy"][axis]
        assert d["delta"] == 0 and d["ci95"] == [0.0, 0.0]
    assert "replicates" not in strip_replicates(comp)


def test_a_sharper_informative_reward_beats_a_coin_flip_and_the_verdict_says_so():
    correct, p = _pairs(n=600)
    coin = np.full_like(p, 0.5)
    rewards = {"base": (np.zeros_like(correct), coin), "refined": (correct, p)}
    comp = compare_rewards(rewards, n_boot=300)
    point = uncertainty_metrics(correct, p)
    assert comp["metrics"]["refined"] == point
    verdicts = axis_verdicts(comp, candidate="refined", references=["base"])
    assert verdicts["accuracy"]["best"] == "refined"
    assert verdicts["accuracy"]["candidate_vs_best_reference"]["outcome"] == "better"
    assert verdicts["nll"]["candidate_vs_best_reference"]["outcome"] == "better"
    # the coin flip is perfectly calibrated (ECE 0), so the informative reward cannot win there
    assert verdicts["ece"]["best"] == "base"
    assert verdicts["ece"]["candidate_vs_best_reference"]["outcome"] in (
        "worse",
        "no detectable difference",
    )


def test_auroc_against_the_pairwise_definition_with_ties():
    pos, neg = np.array([0.3, 0.5, 0.5, 0.9]), np.array([0.1, 0.5, 0.7])
    expected = np.mean([1.0 if a > b else 0.5 if a == b else 0.0 for a in pos for b in neg])
    assert auroc(pos, neg) == pytest.approx(expected)


def test_std_shift_detects_a_larger_std_out_of_distribution():
    rng = np.random.default_rng(1)
    out = std_shift(rng.gamma(2, 1, 200), rng.gamma(2, 1, 200) + 1.0, n_boot=300)
    assert out["mean_out"] > out["mean_in"] and out["auroc"] > 0.6
    assert out["auroc_ci95"][0] > 0.5
