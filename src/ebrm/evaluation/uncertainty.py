"""Uncertainty quality of rewards on the same pairs, compared with paired bootstrap intervals.

For every reward that gives `P(chosen > rejected)` per pair: accuracy (its point reward's
strict ordering), NLL, ECE and Brier of the probability, selective accuracy at 50% and 80%
coverage and the area under the risk-coverage curve (confidence `|p - 1/2|`, see
`selective`). Every reward is scored on the *same* bootstrap resamples of the pairs, so the
difference of any two rewards on any metric has a paired interval, and "which reward is
best on this axis, and is the energy head better than the best reference" is answered
from one set of replicates.

Also: whether a reward's std rises out of distribution (`std_shift`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ebrm.evaluation.calibration import DEFAULT_BINS, bin_index, brier_score
from ebrm.evaluation.calibration import expected_calibration_error as ece
from ebrm.evaluation.metrics import as_numpy, percentile_interval
from ebrm.evaluation.selective import (
    COVERAGES,
    aurc,
    probability_confidence,
    selective_accuracy,
)

_EPS = 1e-12

#: every metric compared, and whether higher is better
AXES: dict[str, bool] = {
    "accuracy": True,
    "nll": False,
    "ece": False,
    "brier": False,
    **{f"selective_accuracy_{round(100 * c)}": True for c in COVERAGES},
    "aurc": False,
}


def nll(p_chosen: Any) -> float:
    """Mean -log P(chosen > rejected) (p clipped to [1e-12, 1])."""
    return float(-np.log(np.clip(as_numpy(p_chosen), _EPS, 1.0)).mean())


def _ece_fast(p: np.ndarray, n_bins: int) -> float:
    # expected_calibration_error on both orders of each pair, without its input checks
    prob = np.concatenate([p, 1.0 - p])
    outcome = np.concatenate([np.ones(p.size), np.zeros(p.size)])
    idx = bin_index(prob, n_bins)
    gap = np.bincount(idx, weights=outcome - prob, minlength=n_bins)
    return float(np.abs(gap).sum() / prob.size)


def uncertainty_metrics(correct: Any, p_chosen: Any, *, n_bins: int = DEFAULT_BINS) -> dict:
    """Every metric of `AXES` for one reward.

    Args:
        correct: (n,) whether the reward's point value orders each pair right (ties wrong).
        p_chosen: (n,) its P(chosen > rejected).
    """
    c, p = as_numpy(correct), as_numpy(p_chosen)
    if c.shape != p.shape or c.ndim != 1 or c.size == 0:
        raise ValueError(
            f"correct and p_chosen must be 1-D of equal length; got {c.shape}, {p.shape}"
        )
    conf = probability_confidence(p)
    out = {
        "accuracy": float(c.mean()),
        "nll": nll(p),
        "ece": ece(p, n_bins=n_bins),
        "brier": brier_score(p),
    }
    for cov in COVERAGES:
        out[f"selective_accuracy_{round(100 * cov)}"] = selective_accuracy(c, conf, cov)
    out["aurc"] = aurc(c, conf)
    return out


def bootstrap_draws(n: int, *, n_boot: int, seed: int) -> np.ndarray:
    """(n_boot, n) resampled pair indices; the same seed gives every reward the same draws."""
    return np.random.default_rng(seed).integers(0, n, size=(n_boot, n))


def _replicates(c: np.ndarray, p: np.ndarray, draws: np.ndarray, n_bins: int) -> dict:
    out = {axis: np.empty(len(draws)) for axis in AXES}
    for b, idx in enumerate(draws):
        cb, pb = c[idx], p[idx]
        conf = probability_confidence(pb)
        out["accuracy"][b] = cb.mean()
        out["nll"][b] = -np.log(np.clip(pb, _EPS, 1.0)).mean()
        out["ece"][b] = _ece_fast(pb, n_bins)
        out["brier"][b] = np.mean((1.0 - pb) ** 2)
        for cov in COVERAGES:
            out[f"selective_accuracy_{round(100 * cov)}"][b] = selective_accuracy(cb, conf, cov)
        out["aurc"][b] = aurc(cb, conf)
    return out


def compare_rewards(
    rewards: Mapping[str, tuple[Any, Any]],
    *,
    baseline: str = "base",
    n_boot: int = 2000,
    seed: int = 0,
    level: float = 0.95,
    n_bins: int = DEFAULT_BINS,
) -> dict:
    """Point metrics of every reward and paired intervals of each against `baseline`.

    Args:
        rewards: name -> (correct (n,), p_chosen (n,)), all on the same n pairs.
        baseline: the name every other reward is compared with.

    Returns:
        {"metrics": {name: {axis: value}}, "vs_baseline": {name: {axis: {"delta", "ci95"}}},
        "baseline", "n", "n_boot", "level", "replicates": {name: {axis: (n_boot,)}}}; the
        replicates let `versus` compare any two rewards on the same resamples. Drop them
        before writing JSON.
    """
    arrays = {name: (as_numpy(c), as_numpy(p)) for name, (c, p) in rewards.items()}
    sizes = {c.size for c, _ in arrays.values()}
    if len(sizes) != 1 or baseline not in arrays:
        raise ValueError(f"rewards must share one pair count and include {baseline!r}")
    n = sizes.pop()
    draws = bootstrap_draws(n, n_boot=n_boot, seed=seed)
    metrics = {name: uncertainty_metrics(c, p, n_bins=n_bins) for name, (c, p) in arrays.items()}
    reps = {name: _replicates(c, p, draws, n_bins) for name, (c, p) in arrays.items()}
    result = {
        "metrics": metrics,
        "baseline": baseline,
        "n": n,
        "n_boot": n_boot,
        "level": level,
        "replicates": reps,
    }
    result["vs_baseline"] = {
        name: {axis: versus(result, name, baseline, axis) for axis in AXES}
        for name in arrays
        if name != baseline
    }
    return result


def versus(comparison: Mapping, name: str, other: str, axis: str) -> dict:
    """`name` minus `other` on one axis, with the paired percentile interval."""
    reps = comparison["replicates"]
    delta = comparison["metrics"][name][axis] - comparison["metrics"][other][axis]
    diff = reps[name][axis] - reps[other][axis]
    return {"delta": float(delta), "ci95": percentile_interval(diff, level=comparison["level"])}


def axis_verdicts(
    comparison: Mapping, *, candidate: str, references: Sequence[str]
) -> dict[str, dict]:
    """Per axis: the best reward, and `candidate` against the best of `references`.

    "better" / "worse" only when the paired interval of the difference excludes 0 (in the
    direction that is better on that axis); otherwise "no detectable difference".
    """
    metrics = comparison["metrics"]
    out = {}
    for axis, higher in AXES.items():
        names = [n for n in metrics if metrics[n].get(axis) is not None]
        pick = max if higher else min
        best = pick(names, key=lambda n: metrics[n][axis])
        refs = [r for r in references if r in metrics]
        best_ref = pick(refs, key=lambda n: metrics[n][axis]) if refs else None
        entry: dict[str, Any] = {"best": best, "best_reference": best_ref}
        if best_ref is not None and candidate in metrics:
            d = versus(comparison, candidate, best_ref, axis)
            lo, hi = d["ci95"]
            good, bad = (lo > 0, hi < 0) if higher else (hi < 0, lo > 0)
            entry["candidate_vs_best_reference"] = {
                **d,
                "outcome": "better" if good else "worse" if bad else "no detectable difference",
            }
        out[axis] = entry
    return out


def strip_replicates(comparison: Mapping) -> dict:
    """The comparison without its bootstrap replicates (JSON-sized)."""
    return {k: v for k, v in comparison.items() if k != "replicates"}


def _average_ranks(x: np.ndarray) -> np.ndarray:
    order = np.argsort(x, kind="stable")
    ranks = np.empty(x.size)
    ranks[order] = np.arange(1, x.size + 1)
    _, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
    sums = np.bincount(inverse, weights=ranks)
    return (sums / counts)[inverse]


def auroc(scores_pos: Any, scores_neg: Any) -> float:
    """P(score_pos > score_neg) + P(tie) / 2 (Mann-Whitney U / (n_pos n_neg))."""
    pos, neg = as_numpy(scores_pos).ravel(), as_numpy(scores_neg).ravel()
    if pos.size == 0 or neg.size == 0:
        raise ValueError("auroc needs at least one score on each side")
    ranks = _average_ranks(np.concatenate([pos, neg]))
    u = ranks[: pos.size].sum() - pos.size * (pos.size + 1) / 2
    return float(u / (pos.size * neg.size))


def std_shift(
    std_in: Any, std_out: Any, *, n_boot: int = 2000, seed: int = 0, level: float = 0.95
) -> dict:
    """Does the std rise out of distribution? In- vs out-of-distribution responses.

    Returns:
        {"mean_in", "mean_out", "ratio" (mean_out / mean_in), "auroc" (P(std_out > std_in),
        0.5 = no separation), "auroc_ci95" (bootstrap, both sides resampled), "n_in", "n_out"}.
    """
    a, b = as_numpy(std_in).ravel(), as_numpy(std_out).ravel()
    rng = np.random.default_rng(seed)
    reps = np.array(
        [
            auroc(b[rng.integers(0, b.size, b.size)], a[rng.integers(0, a.size, a.size)])
            for _ in range(n_boot)
        ]
    )
    mean_in, mean_out = float(a.mean()), float(b.mean())
    return {
        "mean_in": mean_in,
        "mean_out": mean_out,
        "ratio": mean_out / mean_in if mean_in > 0 else None,
        "auroc": auroc(b, a),
        "auroc_ci95": percentile_interval(reps, level=level),
        "n_in": int(a.size),
        "n_out": int(b.size),
    }
