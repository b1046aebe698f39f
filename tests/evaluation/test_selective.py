"""Risk-coverage against a hand-worked example."""

import numpy as np
import pytest

from ebrm.evaluation.selective import aurc, risk_coverage, selective_accuracy


def test_risk_coverage_matches_the_hand_worked_example():
    # by confidence: 0.9 right; a tie at 0.8 (one wrong, one right: 0.5 error each in
    # expectation over the tie order); 0.3 right; 0.1 wrong
    correct = [1, 0, 1, 1, 0]
    confidence = [0.9, 0.8, 0.8, 0.3, 0.1]
    coverage, risk = risk_coverage(correct, confidence)
    assert coverage.tolist() == pytest.approx([0.2, 0.4, 0.6, 0.8, 1.0])
    assert risk.tolist() == pytest.approx([0 / 1, 0.5 / 2, 1 / 3, 1 / 4, 2 / 5])
    assert aurc(correct, confidence) == pytest.approx((0 + 0.25 + 1 / 3 + 0.25 + 0.4) / 5)
    assert selective_accuracy(correct, confidence, 0.5) == pytest.approx(1 - 1 / 3)  # 3 of 5
    assert selective_accuracy(correct, confidence, 0.8) == pytest.approx(0.75)  # 4 of 5
    assert selective_accuracy(correct, confidence, 1.0) == pytest.approx(0.6)  # plain accuracy


def test_the_curve_does_not_depend_on_the_input_order():
    rng = np.random.default_rng(0)
    correct = rng.integers(0, 2, 50)
    confidence = rng.integers(0, 5, 50) / 4  # many ties
    perm = rng.permutation(50)
    a, b = risk_coverage(correct, confidence)[1], risk_coverage(correct[perm], confidence[perm])[1]
    assert np.allclose(a, b)


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="equal length"):
        risk_coverage([1, 0], [0.5])
    with pytest.raises(ValueError, match="coverage"):
        selective_accuracy([1], [0.5], 0.0)
