"""Evaluation of base vs refined rewards: pairwise, RM-Bench, RewardBench v1, calibration.

Pure functions (arrays in, metrics.json-shaped dicts out) plus a runner that scores a
benchmark in one pass and writes the report folder (metrics.json, report.md, PNG plots).
"""

from ebrm.evaluation.calibration import (
    brier_score,
    bt_probability,
    calibration_metrics,
    expected_calibration_error,
    reliability,
)
from ebrm.evaluation.metrics import (
    bootstrap_ci,
    mcnemar_exact,
    paired_difference,
    pairwise_correct,
    verdict,
)
from ebrm.evaluation.pairwise import pairwise_metrics
from ebrm.evaluation.report import render_report, summary_rows, write_outputs
from ebrm.evaluation.rewardbench import rewardbench_metrics
from ebrm.evaluation.rmbench import rmbench_metrics
from ebrm.evaluation.runner import (
    BENCHMARKS,
    evaluate,
    evaluate_features,
    evaluate_scores,
    score_responses,
)

__all__ = [
    "BENCHMARKS",
    "bootstrap_ci",
    "brier_score",
    "bt_probability",
    "calibration_metrics",
    "evaluate",
    "evaluate_features",
    "evaluate_scores",
    "expected_calibration_error",
    "mcnemar_exact",
    "paired_difference",
    "pairwise_correct",
    "pairwise_metrics",
    "reliability",
    "render_report",
    "rewardbench_metrics",
    "rmbench_metrics",
    "score_responses",
    "summary_rows",
    "verdict",
    "write_outputs",
]
