"""Evaluation of rewards against a frozen base: pairwise, RM-Bench, RewardBench v1.

One path: a benchmark (`Benchmark`, looked up by name in the registry) says which responses
each unit compares; `evaluate_rewards` computes every reward's metrics and its paired
difference to the base; `refine_and_evaluate` builds base and refined rewards from stored
features; `evaluate` embeds a benchmark's responses once and does the rest. Pure metric
functions (arrays in, metrics.json-shaped dicts out) sit beside them.
"""

from __future__ import annotations

from ebrm._lazy import lazy_getattr

# name -> module, imported on first use: the CLI reads this package's names and
# defaults (ebrm.cli) without importing torch
_EXPORTS = {
    "BENCHMARKS": "ebrm.evaluation.names",
    "Benchmark": "ebrm.evaluation.benchmark",
    "EmbeddingRM": "ebrm.evaluation.protocols",
    "Evaluation": "ebrm.evaluation.runner",
    "RefiningModel": "ebrm.evaluation.protocols",
    "Reward": "ebrm.evaluation.units",
    "TextRefiningModel": "ebrm.evaluation.protocols",
    "UnitScores": "ebrm.evaluation.units",
    "Units": "ebrm.evaluation.units",
    "bootstrap_ci": "ebrm.evaluation.metrics",
    "brier_score": "ebrm.evaluation.calibration",
    "bt_probability": "ebrm.evaluation.calibration",
    "calibration_metrics": "ebrm.evaluation.calibration",
    "evaluate": "ebrm.evaluation.runner",
    "evaluate_rewards": "ebrm.evaluation.runner",
    "expected_calibration_error": "ebrm.evaluation.calibration",
    "get_benchmark": "ebrm.evaluation.registry",
    "mcnemar_exact": "ebrm.evaluation.metrics",
    "model_rewards": "ebrm.evaluation.runner",
    "paired_difference": "ebrm.evaluation.metrics",
    "pairwise_correct": "ebrm.evaluation.metrics",
    "pairwise_metrics": "ebrm.evaluation.pairwise",
    "refine_and_evaluate": "ebrm.evaluation.runner",
    "reliability": "ebrm.evaluation.calibration",
    "render_report": "ebrm.evaluation.report",
    "rewardbench_metrics": "ebrm.evaluation.rewardbench",
    "rmbench_metrics": "ebrm.evaluation.rmbench",
    "summary_header": "ebrm.evaluation.benchmark",
    "summary_rows": "ebrm.evaluation.report",
    "verdict": "ebrm.evaluation.metrics",
    "write_outputs": "ebrm.evaluation.report",
}
__all__ = sorted(_EXPORTS)


__getattr__ = lazy_getattr(__name__, _EXPORTS)
