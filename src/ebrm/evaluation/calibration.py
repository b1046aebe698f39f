"""Calibration of P(chosen > rejected): ECE, Brier score and reliability-diagram data.

The label of a preference pair is always "chosen wins", so every pair is scored in both
orders: (p, outcome 1) and (1 - p, outcome 0). The reliability diagram then covers [0, 1]
and is symmetric about 1/2; the Brier score is unchanged by this (both orders have the
same squared error), and the ECE uses bins symmetric about 1/2.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ebrm.evaluation.metrics import as_numpy

DEFAULT_BINS = 15


def bt_probability(r_chosen: Any, r_rejected: Any) -> np.ndarray:
    """The Bradley-Terry probability sigmoid(r_c - r_r) of a base RM, in its RAW reward units.

    A BT-trained RM's raw score difference is a log-odds, so raw units (not the EBRM
    normalised units, which are scaled by s / std) are the ones whose sigmoid is a
    probability.
    """
    diff = as_numpy(r_chosen) - as_numpy(r_rejected)
    # sigmoid(d) = (1 + tanh(d / 2)) / 2 never overflows.
    return 0.5 * (1.0 + np.tanh(0.5 * diff))


def _symmetrised(p_chosen: Any) -> tuple[np.ndarray, np.ndarray]:
    p = as_numpy(p_chosen)
    if p.ndim != 1 or p.size == 0:
        raise ValueError(f"probabilities must be a non-empty 1-D array; got shape {p.shape}")
    if np.isnan(p).any() or (p < 0).any() or (p > 1).any():
        raise ValueError("probabilities must lie in [0, 1] (no NaN)")
    return np.concatenate([p, 1.0 - p]), np.concatenate([np.ones(p.size), np.zeros(p.size)])


def bin_index(prob: np.ndarray, n_bins: int) -> np.ndarray:
    """Equal-width bin of each probability: [0, 1/n), ..., [(n-1)/n, 1] (1.0 in the last)."""
    return np.minimum((prob * n_bins).astype(np.int64), n_bins - 1)


def reliability(p_chosen: Any, *, n_bins: int = DEFAULT_BINS) -> dict[str, list]:
    """Reliability-diagram data of P(chosen > rejected), both orders of every pair.

    Returns:
        {"bin_lower", "bin_upper", "count", "mean_confidence", "accuracy"} lists of length
        n_bins; empty bins have count 0 and None for the means.
    """
    prob, outcome = _symmetrised(p_chosen)
    idx = bin_index(prob, n_bins)
    count = np.bincount(idx, minlength=n_bins)
    conf_sum = np.bincount(idx, weights=prob, minlength=n_bins)
    acc_sum = np.bincount(idx, weights=outcome, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        conf, acc = conf_sum / count, acc_sum / count
    return {
        "bin_lower": [k / n_bins for k in range(n_bins)],
        "bin_upper": [(k + 1) / n_bins for k in range(n_bins)],
        "count": [int(c) for c in count],
        "mean_confidence": [float(v) if n else None for v, n in zip(conf, count, strict=True)],
        "accuracy": [float(v) if n else None for v, n in zip(acc, count, strict=True)],
    }


def expected_calibration_error(p_chosen: Any, *, n_bins: int = DEFAULT_BINS) -> float:
    """ECE = sum_b (n_b / N) |accuracy_b - confidence_b| over equal-width bins."""
    prob, outcome = _symmetrised(p_chosen)
    idx = bin_index(prob, n_bins)
    gap = np.abs(
        np.bincount(idx, weights=outcome, minlength=n_bins)
        - np.bincount(idx, weights=prob, minlength=n_bins)
    )
    return float(gap.sum() / prob.size)


def brier_score(p_chosen: Any) -> float:
    """mean (1 - p)^2: the squared error of P(chosen > rejected) against the label."""
    p = as_numpy(p_chosen)
    return float(np.mean((1.0 - p) ** 2))


def calibration_metrics(p_chosen: Any, *, n_bins: int = DEFAULT_BINS) -> dict[str, Any]:
    """{"ece", "brier", "n_bins", "reliability"} for one side."""
    return {
        "ece": expected_calibration_error(p_chosen, n_bins=n_bins),
        "brier": brier_score(p_chosen),
        "n_bins": n_bins,
        "reliability": reliability(p_chosen, n_bins=n_bins),
    }
