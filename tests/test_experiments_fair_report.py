"""experiments/fair_report.py: the like-for-like tables from cell rows."""

from __future__ import annotations

from pathlib import Path

from tests.scripts import load_script

fair = load_script(Path("experiments/fair_report.py"), "experiments_fair_report")

AXES = [a for a, _, _ in fair.AXES]


def _row(seed: int, refined_ece: float, outcome: str) -> dict:
    metrics = {
        name: {axis: 0.5 for axis in AXES}
        for name in ("base-calibrated", "refined", "laplace", "ensemble")
    }
    metrics["refined"]["ece"] = refined_ece
    verdicts = {
        axis: {
            "best": "refined",
            "best_reference": "laplace",
            "candidate_vs_best_reference": {"delta": 0.0, "ci95": [0, 0], "outcome": outcome},
        }
        for axis in AXES
    }
    calibration = {n: {"raw": {"ece": 0.2}} for n in ("base", "refined", "laplace", "ensemble")}
    return {
        "noise": 0.0,
        "seed": seed,
        "label": fair.DEFAULT_LABEL,
        "hh": {
            "uncertainty": {"metrics": metrics, "verdicts": verdicts},
            "calibration": calibration,
        },
        "std_shift": {
            "refined spread": {
                "mean_in": 1.0,
                "mean_out": 2.0,
                "auroc": 0.7,
                "auroc_ci95": [0.6, 0.8],
            }
        },
    }


def test_tables_average_over_seeds_and_count_verdicts():
    rows = [_row(0, 0.01, "better"), _row(1, 0.03, "no detectable difference")]
    text = "\n".join(fair.fair_section(rows, "####"))
    assert "noise 0%, seeds 0, 1" in text
    line = next(x for x in text.splitlines() if x.startswith("| refined |"))
    assert "0.020 ± 0.014" in line  # ECE mean ± std of 0.01 and 0.03
    assert "| ECE | refined 2 | 1 / 1 / 0 |" in text
    assert "| refined spread | 1.000 ± 0.000 | 2.000 ± 0.000 | 0.70 ± 0.00 | 2 of 2 |" in text
