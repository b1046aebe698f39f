"""The report folder of an evaluation: metrics.json, per-example scores, PNG plots, report.md."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ebrm._io import atomic_write_json, atomic_write_text
from ebrm.evaluation import plots
from ebrm.evaluation.benchmark import (
    BASE,
    INCOMPLETE,
    REFINED,
    pct,
    reward_names,
    signed,
    summary_header,
)
from ebrm.evaluation.names import METRICS_FILE
from ebrm.evaluation.registry import get_benchmark
from ebrm.evaluation.units import Units, UnitScores

logger = logging.getLogger(__name__)

REPORT_FILE = "report.md"


def summary_rows(metrics: Mapping[str, Any]) -> list[tuple[str, ...]]:
    """(metric, <each reward>, <each reward - base>) rows, accuracies in percent.

    Used for report.md and for the CLI's summary table so both show the same numbers;
    `summary_header(metrics)` names the columns.
    """
    return list(get_benchmark(metrics["benchmark"]).summary_rows(metrics))


def incomplete_note(metrics: Mapping[str, Any]) -> str:
    """The note of a run on part of a benchmark's domains, sections or subsets: "overall
    over 2 of 4 domains (incomplete: not comparable with published numbers)"; "" when
    complete. report.md and the CLI summary print it beside the number."""
    bench = get_benchmark(metrics["benchmark"])
    if bench.coverage(metrics) is None:
        return ""
    return f"{bench.primary_label(metrics, bench.primary_metric)} ({INCOMPLETE})"


def verdict_of(metrics: Mapping[str, Any]) -> str:
    """The one-sentence verdict stored in metrics["delta"]["verdict"] ("" if absent)."""
    return str(metrics.get("delta", {}).get("verdict", ""))


def make_plots(
    metrics: Mapping[str, Any],
    out_dir: str | Path,
    scores: Mapping[str, UnitScores],
    *,
    dpi: int = plots.DPI,
) -> dict[str, Path]:
    """Write the PNG plots for a run; returns {title: path}.

    Rewards are in the EBRM normalised units; the distributions are standardised per reward
    so their panels share one axis. Every title names n and the data (`plots.labels_of`).
    """
    out = Path(out_dir)
    label = {**plots.labels_of(metrics), "dpi": dpi}

    def flat(s: UnitScores) -> tuple[np.ndarray, np.ndarray]:
        c, r = s.chosen.ravel(), s.rejected.ravel()
        return c[~np.isnan(c)], r[~np.isnan(r)]

    sides = {name: flat(s) for name, s in scores.items()}
    made: dict[str, Path] = {
        "Chosen vs rejected reward distributions": plots.reward_distributions(
            out / "reward_distributions.png", sides, **label
        ),
    }
    if REFINED in sides:
        (bc, br), (rc, rr) = sides[BASE], sides[REFINED]
        made["Base vs refined reward per response"] = plots.base_vs_refined(
            out / "base_vs_refined.png",
            np.concatenate([bc, br]),
            np.concatenate([rc, rr]),
            is_chosen=np.concatenate([np.ones(bc.size, bool), np.zeros(br.size, bool)]),
            **label,
        )
    made.update(get_benchmark(metrics["benchmark"]).plots(metrics, out, dpi=dpi))
    cal_sides = {
        name: {
            "reliability": side["calibration"]["reliability"],
            "ece": side["ece"],
            "temperature": plots.temperature_of(metrics, name),
        }
        for name in reward_names(metrics)
        if "calibration" in (side := metrics[name])
    }
    if cal_sides:
        made["Reliability diagram"] = plots.reliability_diagram(
            out / "reliability.png", cal_sides, **label
        )
    return made


def render_report(metrics: Mapping[str, Any], plot_files: Mapping[str, str | Path]) -> str:
    """report.md text: what was evaluated, the verdict, the results table, the plots."""
    lines = [
        f"# EBRM evaluation: {metrics['benchmark']}",
        "",
        f"- data: `{metrics.get('data', '')}`",
        f"- units evaluated: {metrics['n']}",
        "- accuracies are strict (a tie counts as wrong), in percent; intervals are 95% "
        "percentile bootstrap intervals (paired for refined - base).",
    ]
    if any("calibration" in metrics.get(name, {}) for name in reward_names(metrics)):
        lines.append(
            "- base calibration is sigmoid(r_chosen - r_rejected) in the base RM's raw units; "
            "refined calibration is the energy posterior's P(chosen > rejected). Every pair "
            "is scored in both orders."
        )
    if note := incomplete_note(metrics):
        lines.append(f"- **{note}**")
    lines.append("")
    verdict = verdict_of(metrics)
    if verdict:
        lines += [f"**{verdict}**", ""]
    sentences = (metrics.get("uncertainty") or {}).get("sentences") or []
    if sentences:
        lines += [
            "Per axis (every probability temperature-scaled on the validation pairs; "
            "paired bootstrap over the same pairs):",
            "",
        ]
        lines += [f"- {s}" for s in sentences] + [""]
    header = summary_header(metrics)
    lines += ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in summary_rows(metrics)]
    lines += ["", *_subset_table(metrics)]
    for title, path in plot_files.items():
        name = Path(path).name
        lines += [f"## {title}", "", f"![{title}]({name})", ""]
    lines += [f"Full numbers: [`{METRICS_FILE}`]({METRICS_FILE}).", ""]
    return "\n".join(lines)


def _subset_table(metrics: Mapping[str, Any]) -> list[str]:
    """Per-subset accuracies (percent) when the benchmark reports subsets (RewardBench)."""
    names = reward_names(metrics)
    subsets = metrics.get(BASE, {}).get("subsets")
    if not isinstance(subsets, Mapping) or not subsets:
        return []
    others = [n for n in names if n != BASE]
    header = ["subset", "pairs", *names, *(f"{n} - {BASE}" for n in others)]
    lines = ["## Per subset", "", "| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for subset, base in subsets.items():
        acc = {n: metrics.get(n, {}).get("subsets", {}).get(subset, {}).get("accuracy")
               for n in names}  # fmt: skip
        cells = [subset, str(base.get("n", "-")), *(pct(acc[n]) for n in names)]
        cells += [
            "-" if acc[n] is None or acc[BASE] is None else signed(acc[n] - acc[BASE])
            for n in others
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return [*lines, ""]


def examples_file(reward: str) -> str:
    """The per-example scores file of one reward: examples-<reward>.jsonl."""
    return f"examples-{reward}.jsonl"


def write_examples(path: str | Path, records: Sequence[Mapping[str, Any]]) -> Path:
    """JSON lines, one record per unit, written atomically."""
    text = "".join(json.dumps(dict(r), ensure_ascii=False) + "\n" for r in records)
    return atomic_write_text(path, text)


def write_outputs(
    metrics: Mapping[str, Any],
    out_dir: str | Path,
    *,
    units: Units,
    scores: Mapping[str, UnitScores],
    make_figures: bool = True,
) -> dict[str, Path]:
    """Write one examples-<reward>.jsonl per reward (the benchmark's per-example records,
    for re-scoring), the plots, report.md and, last, metrics.json into `out_dir`, each
    atomically: a directory with metrics.json holds a complete report.

    Returns:
        {"metrics": path, "report": path, "examples-<reward>": path, <plot title>: path, ...}
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    bench = get_benchmark(metrics["benchmark"])
    # metrics.json marks a finished report (readers and `ebrm eval` check for it), so it
    # goes first when overwriting and comes back last: never beside half the new files
    (out / METRICS_FILE).unlink(missing_ok=True)
    files: dict[str, Path] = {}
    for name, s in scores.items():
        files[f"examples-{name}"] = write_examples(
            out / examples_file(name), bench.examples(units, s)
        )
    figures = make_plots(metrics, out, scores) if make_figures else {}
    files["report"] = atomic_write_text(out / REPORT_FILE, render_report(metrics, figures))
    files.update(figures)
    files["metrics"] = atomic_write_json(out / METRICS_FILE, dict(metrics))
    logger.info("wrote %s, %s and %d plots to %s", METRICS_FILE, REPORT_FILE, len(figures), out)
    return files
