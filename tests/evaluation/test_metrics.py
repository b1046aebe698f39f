"""Accuracy, bootstrap, McNemar and the verdict against hand-worked and naive computations."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ebrm.evaluation.metrics import (
    bootstrap_ci,
    bootstrap_replicates,
    mcnemar_exact,
    paired_difference,
    pairwise_correct,
    verdict,
    weighted_stratified_mean,
)


def test_pairwise_correct_is_strict_and_ties_are_wrong():
    correct = pairwise_correct([1.0, 2.0, 3.0, 0.5], [0.0, 2.0, 4.0, 0.4])
    assert correct.tolist() == [True, False, False, True]


def test_pairwise_correct_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="equal length"):
        pairwise_correct([1.0, 2.0], [1.0])


@pytest.mark.parametrize(
    ("b", "c", "expected"),
    [
        (0, 5, 2 / 32),  # both tails of Binomial(5, 1/2) at the extremes
        (3, 3, 1.0),
        (1, 9, 2 * (1 + 10) / 1024),
        (0, 0, 1.0),
        (7, 2, 2 * (1 + 9 + 36) / 512),
    ],
)
def test_mcnemar_exact_hand_worked(b, c, expected):
    assert mcnemar_exact(b, c) == pytest.approx(expected)


def test_mcnemar_matches_scipy_binomtest():
    stats = pytest.importorskip("scipy.stats")
    for b, c in [(4, 11), (30, 18), (120, 95), (0, 1)]:
        ref = stats.binomtest(b, b + c, 0.5, alternative="two-sided").pvalue
        assert mcnemar_exact(b, c) == pytest.approx(ref, rel=1e-9)


def _naive_replicates(x, strata, weights, n_boot, seed):
    # Same draw order as the library (one chunk, strata in first-appearance order), loops.
    rng = np.random.default_rng(seed)
    x = np.asarray(x, dtype=float)
    order = list(dict.fromkeys(strata))
    idx = {s: [i for i, t in enumerate(strata) if t == s] for s in order}
    draws = {s: rng.integers(0, len(idx[s]), size=(n_boot, len(idx[s]))) for s in order}
    out = []
    for b in range(n_boot):
        total = 0.0
        for s in order:
            vals = [x[idx[s][k]] for k in draws[s][b]]
            total += weights[s] * sum(vals) / len(vals)
        out.append(total)
    return np.array(out)


def test_bootstrap_replicates_match_a_naive_loop():
    rng = np.random.default_rng(1)
    x = (rng.random(40) < 0.6).astype(float)
    strata = ["a"] * 15 + ["b"] * 25
    weights = {"a": 0.3, "b": 0.7}
    lib = bootstrap_replicates(x, strata=strata, stratum_weights=weights, n_boot=100, seed=5)
    naive = _naive_replicates(x, strata, weights, 100, 5)
    np.testing.assert_allclose(lib, naive)
    plain = bootstrap_replicates(x, n_boot=50, seed=2)
    np.testing.assert_allclose(plain, _naive_replicates(x, ["u"] * 40, {"u": 1.0}, 50, 2))


def test_bootstrap_ci_is_seeded_and_close_to_normal_theory():
    rng = np.random.default_rng(0)
    x = (rng.random(2000) < 0.7).astype(float)
    lo, hi = bootstrap_ci(x, n_boot=2000, seed=3)
    assert [lo, hi] == bootstrap_ci(x, n_boot=2000, seed=3)
    p = x.mean()
    half = 1.96 * math.sqrt(p * (1 - p) / x.size)
    assert lo < p < hi
    assert (hi - lo) / 2 == pytest.approx(half, rel=0.15)


def test_bootstrap_of_a_constant_is_a_point():
    assert bootstrap_ci(np.ones(30), n_boot=300) == [1.0, 1.0]


def test_weighted_stratified_mean_hand_worked():
    x = np.array([1, 0, 1, 1, 0.0])
    strata = np.array(["a", "a", "b", "b", "b"])
    # a: 0.5, b: 2/3
    assert weighted_stratified_mean(x, strata, {"a": 0.25, "b": 0.75}) == pytest.approx(
        0.25 * 0.5 + 0.75 * 2 / 3
    )
    assert weighted_stratified_mean(x, strata, None) == pytest.approx((0.5 + 2 / 3) / 2)


def test_paired_difference_counts_discordant_pairs():
    base = np.array([1, 1, 0, 0, 1, 0, 1, 1], dtype=float)
    refined = np.array([1, 0, 1, 1, 1, 1, 1, 0], dtype=float)
    out = paired_difference(base, refined, n_boot=500, seed=0)
    assert out["delta"] == pytest.approx(refined.mean() - base.mean())
    assert out["improved"] == 3  # base wrong, refined right: indices 2, 3, 5
    assert out["worsened"] == 2  # indices 1, 7
    assert out["mcnemar_p"] == pytest.approx(mcnemar_exact(3, 2))
    assert out["ci95"][0] <= out["delta"] <= out["ci95"][1]


def test_paired_interval_is_narrower_than_unpaired_for_correlated_sides():
    rng = np.random.default_rng(0)
    base = (rng.random(800) < 0.65).astype(float)
    refined = base.copy()
    flip = rng.choice(800, size=40, replace=False)
    refined[flip] = 1 - refined[flip]
    paired = paired_difference(base, refined, n_boot=1000, seed=1)["ci95"]
    lo_b, hi_b = bootstrap_ci(base, n_boot=1000, seed=1)
    assert paired[1] - paired[0] < hi_b - lo_b


def _delta(d, lo, hi):
    return {"delta": d, "ci95": [lo, hi], "n": 100, "level": 0.95, "mcnemar_p": 0.01}


def test_verdict_sentences():
    assert verdict(_delta(0.03, 0.01, 0.05)).startswith("Refinement helped")
    assert verdict(_delta(-0.03, -0.05, -0.01)).startswith("Refinement hurt")
    text = verdict(_delta(0.01, -0.01, 0.03))
    assert text.startswith("No detectable difference")
    assert "+1.0 points" in text and "-1.0 to +3.0" in text and "n = 100 pairs" in text
    # An interval touching 0 is not a gain.
    assert verdict(_delta(0.02, 0.0, 0.04)).startswith("No detectable difference")


def test_verdict_says_an_interval_ending_at_0_touches_it():
    # the "+0.0 to +1.4 ... includes 0": an end at exactly 0 "touches" 0
    text = verdict(_delta(0.007, 0.0, 0.014))
    assert "95% CI +0.0 to +1.4" in text
    assert text.endswith("the interval touches 0, so these pairs cannot tell refined from base.")
    # an end that is not 0 never prints as 0.0: two decimals below 0.05 points
    text = verdict(_delta(0.007, -0.0004, 0.014))
    assert "95% CI -0.04 to +1.4" in text and "the interval includes 0, so" in text
    assert "CI +0.04 to" in verdict(_delta(0.007, 0.0004, 0.014))
