"""Selective prediction: accuracy when a reward may abstain on the pairs it is least sure of.

Pairs are ranked by a confidence (for a probability `p = P(chosen > rejected)`, its
distance from a coin flip `|p - 1/2|`); at coverage `c` the reward answers the most
confident `ceil(c * n)` pairs. The risk-coverage curve is the error rate of the answered
pairs at every coverage `k / n`, and its area (AURC, the mean risk over k = 1..n) is lower
for a reward whose confidence separates its right answers from its wrong ones.

Ties in confidence are ordered at random in expectation: inside a tie group every pair
contributes the group's error rate, so the curve does not depend on the input order.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ebrm.evaluation.metrics import as_numpy

COVERAGES = (0.5, 0.8)  # the selective accuracies reported


def _check(correct: Any, confidence: Any) -> tuple[np.ndarray, np.ndarray]:
    c, s = as_numpy(correct), as_numpy(confidence)
    if c.ndim != 1 or c.shape != s.shape or c.size == 0:
        raise ValueError(
            f"correct and confidence must be non-empty 1-D arrays of equal length; "
            f"got {c.shape} and {s.shape}"
        )
    if np.isnan(s).any():
        raise ValueError("confidence must not contain NaN")
    return c, s


def risk_coverage(correct: Any, confidence: Any) -> tuple[np.ndarray, np.ndarray]:
    """The risk-coverage curve.

    Args:
        correct: (n,) 1 where the reward orders the pair right, else 0.
        confidence: (n,) higher = surer.

    Returns:
        (coverage, risk), each (n,): coverage k / n and the (tie-averaged) error rate of
        the k most confident pairs, k = 1..n.
    """
    c, s = _check(correct, confidence)
    order = np.argsort(-s, kind="stable")
    err, conf = 1.0 - c[order], s[order]
    # tie groups of equal confidence: each pair gets its group's mean error
    starts = np.flatnonzero(np.r_[True, conf[1:] != conf[:-1]])
    sizes = np.diff(np.r_[starts, conf.size])
    group_rate = np.add.reduceat(err, starts) / sizes
    smoothed = np.repeat(group_rate, sizes)
    k = np.arange(1, c.size + 1)
    return k / c.size, np.cumsum(smoothed) / k


def aurc(correct: Any, confidence: Any) -> float:
    """Area under the risk-coverage curve: the mean risk over coverages 1/n, ..., 1."""
    return float(risk_coverage(correct, confidence)[1].mean())


def selective_accuracy(correct: Any, confidence: Any, coverage: float) -> float:
    """Accuracy on the ceil(coverage * n) most confident pairs (coverage in (0, 1])."""
    if not 0.0 < coverage <= 1.0:
        raise ValueError(f"coverage must be in (0, 1]; got {coverage}")
    _, risk = risk_coverage(correct, confidence)
    k = max(1, math.ceil(coverage * risk.size - 1e-9))
    return float(1.0 - risk[k - 1])


def probability_confidence(p_chosen: Any) -> np.ndarray:
    """|p - 1/2|: how far P(chosen > rejected) is from a coin flip."""
    return np.abs(as_numpy(p_chosen) - 0.5)
