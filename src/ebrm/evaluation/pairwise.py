"""Pairwise preference accuracy of base vs refined rewards, in the metrics.json form."""

from __future__ import annotations

from typing import Any

import numpy as np

from ebrm.evaluation.calibration import DEFAULT_BINS, calibration_metrics
from ebrm.evaluation.metrics import (
    as_numpy,
    bootstrap_ci,
    paired_difference,
    pairwise_correct,
    verdict,
)


def side_metrics(
    r_chosen: Any,
    r_rejected: Any,
    *,
    p_chosen: Any | None = None,
    n_boot: int = 2000,
    seed: int = 0,
    n_bins: int = DEFAULT_BINS,
) -> dict[str, Any]:
    """Accuracy (strict >, ties wrong) with its 95% bootstrap interval, for one reward.

    Args:
        r_chosen, r_rejected: (P,) rewards of the chosen and rejected responses.
        p_chosen: optional (P,) P(chosen > rejected) for calibration (ECE, Brier, diagram).
        n_boot, seed: bootstrap replicates and seed.
        n_bins: calibration bins.

    Returns:
        {"accuracy", "ci95", "n_correct", "ties", "mean_margin"} (+ "ece", "brier",
        "calibration" when `p_chosen` is given).
    """
    correct = pairwise_correct(r_chosen, r_rejected)
    c, r = as_numpy(r_chosen), as_numpy(r_rejected)
    out: dict[str, Any] = {
        "accuracy": float(correct.mean()),
        "ci95": bootstrap_ci(correct, n_boot=n_boot, seed=seed),
        "n_correct": int(correct.sum()),
        "ties": int((c == r).sum()),
        "mean_margin": float(np.mean(c - r)),
    }
    if p_chosen is not None:
        cal = calibration_metrics(p_chosen, n_bins=n_bins)
        out["ece"], out["brier"] = cal.pop("ece"), cal.pop("brier")
        out["calibration"] = cal
    return out


def pairwise_metrics(
    base_chosen: Any,
    base_rejected: Any,
    refined_chosen: Any,
    refined_rejected: Any,
    *,
    p_base: Any | None = None,
    p_refined: Any | None = None,
    data: str = "",
    n_boot: int = 2000,
    seed: int = 0,
) -> dict[str, Any]:
    """The pairwise metrics.json object: both sides, and the paired refined-minus-base delta.

    Base and refined must score the same pairs in the same order (one pass over the data).

    Returns:
        {"benchmark": "pairwise", "data", "n", "base", "refined",
         "delta": {"accuracy", "ci95", "mcnemar_p", "improved", "worsened", "verdict", ...}}
    """
    correct_base = pairwise_correct(base_chosen, base_rejected)
    correct_refined = pairwise_correct(refined_chosen, refined_rejected)
    if correct_base.shape != correct_refined.shape:
        raise ValueError(
            f"base scores {correct_base.shape[0]} pairs but refined scores "
            f"{correct_refined.shape[0]}; both must come from the same pass over the data"
        )
    opts = {"n_boot": n_boot, "seed": seed}
    delta = paired_difference(correct_base, correct_refined, **opts)
    delta["accuracy"] = delta.pop("delta")
    delta["verdict"] = verdict({**delta, "delta": delta["accuracy"]}, unit="pairs")
    return {
        "benchmark": "pairwise",
        "data": data,
        "n": int(correct_base.size),
        "base": side_metrics(base_chosen, base_rejected, p_chosen=p_base, **opts),
        "refined": side_metrics(refined_chosen, refined_rejected, p_chosen=p_refined, **opts),
        "delta": delta,
    }
