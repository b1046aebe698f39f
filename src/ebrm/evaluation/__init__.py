"""Evaluation of rewards against a frozen base: pairwise, RM-Bench, RewardBench v1.

One path: a benchmark (`Benchmark`, looked up by name in the registry) says which responses
each unit compares; `evaluate_rewards` computes every reward's metrics and its paired
difference to the base; `refine_and_evaluate` builds base and refined rewards from stored
features; `evaluate` embeds a benchmark's responses once and does the rest. Pure metric
functions (arrays in, metrics.json-shaped dicts out) sit beside them.
"""

from ebrm.evaluation.benchmark import Benchmark, summary_header
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
from ebrm.evaluation.protocols import EmbeddingRM, RefiningModel, TextRefiningModel
from ebrm.evaluation.registry import BENCHMARKS, get_benchmark
from ebrm.evaluation.report import render_report, summary_rows, write_outputs
from ebrm.evaluation.rewardbench import rewardbench_metrics
from ebrm.evaluation.rmbench import rmbench_metrics
from ebrm.evaluation.runner import (
    Evaluation,
    evaluate,
    evaluate_rewards,
    model_rewards,
    refine_and_evaluate,
)
from ebrm.evaluation.units import Reward, Units, UnitScores

__all__ = [
    "BENCHMARKS",
    "Benchmark",
    "EmbeddingRM",
    "Evaluation",
    "RefiningModel",
    "Reward",
    "TextRefiningModel",
    "UnitScores",
    "Units",
    "bootstrap_ci",
    "brier_score",
    "bt_probability",
    "calibration_metrics",
    "evaluate",
    "evaluate_rewards",
    "expected_calibration_error",
    "get_benchmark",
    "mcnemar_exact",
    "model_rewards",
    "paired_difference",
    "pairwise_correct",
    "pairwise_metrics",
    "refine_and_evaluate",
    "reliability",
    "render_report",
    "rewardbench_metrics",
    "rmbench_metrics",
    "summary_header",
    "summary_rows",
    "verdict",
    "write_outputs",
]
