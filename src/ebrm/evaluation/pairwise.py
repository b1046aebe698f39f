"""Pairwise preference accuracy of each reward against the base, in the metrics.json form."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ebrm.data.types import Conversation, PreferencePair
from ebrm.evaluation import plots
from ebrm.evaluation.benchmark import (
    BenchmarkBase,
    calibration_side_rows,
    ci_text,
    mcnemar_rows,
    pct,
    signed,
)
from ebrm.evaluation.calibration import DEFAULT_BINS, calibration_metrics
from ebrm.evaluation.fair import uncertainty_block
from ebrm.evaluation.metrics import (
    as_numpy,
    bootstrap_ci,
    paired_difference,
    pairwise_correct,
    verdict,
)
from ebrm.evaluation.uncertainty import uncertainty_metrics
from ebrm.evaluation.units import Units, UnitScores

SELECTIVE_KEYS = ("selective_accuracy_50", "selective_accuracy_80")


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
        full = uncertainty_metrics(correct, p_chosen, n_bins=n_bins)
        out.update({k: full[k] for k in ("nll", *SELECTIVE_KEYS, "aurc")})
    return out


class PairwiseBenchmark(BenchmarkBase):
    """Preference pairs: strict accuracy, calibration of P(chosen > rejected), McNemar."""

    name = "pairwise"
    unit = "pairs"
    primary_metric = "accuracy"
    what = "accuracy"

    def load(self, spec: str, *, limit: int | None = None) -> list[PreferencePair]:
        from ebrm.data import load_pairs

        return load_pairs(spec, limit=limit)

    def responses(self, rows: Sequence[PreferencePair]) -> tuple[list[Conversation], Units]:
        """Chosen and rejected of each pair, interleaved: pair i is rows (2i, 2i + 1)."""
        rows = self.rows_of(rows, PreferencePair, "preference pairs")
        convs = [c for pair in rows for c in (pair.chosen, pair.rejected)]
        n = len(rows)
        return convs, Units.of(
            np.arange(0, 2 * n, 2),
            np.arange(1, 2 * n, 2),
            labels=[pair.subset for pair in rows],
            ids=[pair.id or str(i) for i, pair in enumerate(rows)],
        )

    def side(self, units: Units, scores: UnitScores, *, n_boot: int, seed: int) -> dict:
        chosen, rejected = scores.pair
        return side_metrics(chosen, rejected, p_chosen=scores.p_chosen, n_boot=n_boot, seed=seed)

    def paired(
        self,
        units: Units,
        base: UnitScores,
        other: UnitScores,
        *,
        n_boot: int,
        seed: int,
        who: str,
    ) -> dict:
        correct_base, correct_other = pairwise_correct(*base.pair), pairwise_correct(*other.pair)
        delta = paired_difference(correct_base, correct_other, n_boot=n_boot, seed=seed)
        delta["accuracy"] = delta.pop("delta")
        delta["verdict"] = verdict({**delta, "delta": delta["accuracy"]}, unit="pairs", who=who)
        return delta

    def top_level(self, units, scores, *, n_boot, seed):
        """ "uncertainty": every reward with a P(chosen > rejected) on the same resamples,
        and the verdict per axis (`ebrm.evaluation.fair.uncertainty_block`)."""
        with_p = {
            name: (pairwise_correct(*s.pair), s.p_chosen)
            for name, s in scores.items()
            if s.p_chosen is not None
        }
        if "refined" not in with_p or len(with_p) < 2:
            return {}
        return {"uncertainty": uncertainty_block(with_p, n_boot=n_boot, seed=seed)}

    def examples(self, units: Units, scores: UnitScores) -> list[dict[str, Any]]:
        """One record per pair: id, score_chosen, score_rejected, correct (strict >)."""
        return pair_examples(units, scores, with_subset=False)

    def side_rows(self, metrics):
        return [
            ("accuracy (%)", ("accuracy",), pct),
            ("accuracy 95% CI", ("ci95",), ci_text),
            ("ties", ("ties",), _count),
            *calibration_side_rows(),
            ("NLL", ("nll",), _four),
            ("selective acc. @80% (%)", ("selective_accuracy_80",), pct),
            ("selective acc. @50% (%)", ("selective_accuracy_50",), pct),
            ("AURC (risk-coverage)", ("aurc",), _four),
        ]

    def plots(self, metrics, out_dir, *, dpi=None):
        curves = (metrics.get("uncertainty") or {}).get("risk_coverage")
        if not curves:
            return {}
        path = plots.risk_coverage(
            Path(out_dir) / "risk_coverage.png",
            curves,
            dpi=dpi or plots.DPI,
            **plots.labels_of(metrics),
        )
        return {"Risk-coverage (abstain on the pairs each reward is least sure of)": path}

    def delta_cell(self, delta, key):
        if key == ("accuracy",):
            return signed(delta.get("accuracy"))
        if key == ("ci95",):
            return ci_text(delta.get("ci95"))
        return "" if key == ("ties",) else None

    def delta_rows(self, metrics, names, deltas):
        return mcnemar_rows(names, deltas)


def _count(x: Any) -> str:
    return "-" if x is None else str(x)


def _four(x: Any) -> str:
    return "-" if x is None else f"{x:.4f}"


def pair_examples(units: Units, scores: UnitScores, *, with_subset: bool) -> list[dict[str, Any]]:
    """Per-pair records for re-scoring: id, (subset,) score_chosen, score_rejected, correct."""
    chosen, rejected = scores.pair
    ids = units.ids or tuple(str(i) for i in range(len(units)))
    labels = units.labels or (None,) * len(units)
    out = []
    for i in range(len(units)):
        record: dict[str, Any] = {"id": ids[i]}
        if with_subset:
            record["subset"] = labels[i]
        c, r = float(chosen[i]), float(rejected[i])
        record.update(score_chosen=c, score_rejected=r, correct=bool(c > r))
        out.append(record)
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
    """The pairwise metrics.json object of base vs refined scores of the same pairs.

    Returns:
        {"benchmark": "pairwise", "data", "n", "rewards", "base", "refined",
         "delta": {"accuracy", "ci95", "mcnemar_p", "improved", "worsened", "verdict", ...},
         "deltas"}
    """
    units = Units.of(np.arange(len(as_numpy(base_chosen))), np.arange(len(as_numpy(base_chosen))))
    scores = {
        "base": _scores(base_chosen, base_rejected, p_base),
        "refined": _scores(refined_chosen, refined_rejected, p_refined),
    }
    out = PairwiseBenchmark().metrics(units, scores, n_boot=n_boot, seed=seed)
    return {"benchmark": out.pop("benchmark"), "data": data, **out}


def _scores(chosen: Any, rejected: Any, p: Any | None) -> UnitScores:
    c, r = as_numpy(chosen), as_numpy(rejected)
    if c.shape != r.shape or c.ndim != 1:
        raise ValueError(
            f"chosen and rejected scores must be 1-D of equal length; got {c.shape} and {r.shape}"
        )
    return UnitScores(c[:, None], r[:, None], None if p is None else as_numpy(p))
