"""The report folder of an evaluation: metrics.json, PNG plots and report.md linking them."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ebrm._io import atomic_write_json, atomic_write_text
from ebrm.evaluation import plots
from ebrm.evaluation.metrics import format_p

logger = logging.getLogger(__name__)

METRICS_FILE = "metrics.json"
REPORT_FILE = "report.md"


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100.0 * x:.1f}"


def _ci(ci: list[float] | None) -> str:
    return "-" if not ci else f"[{100.0 * ci[0]:.1f}, {100.0 * ci[1]:.1f}]"


def _signed(x: float | None) -> str:
    return "-" if x is None else f"{100.0 * x:+.1f}"


def _calibration_rows(base: Mapping, refined: Mapping) -> list[tuple[str, str, str, str]]:
    rows = []
    for key, label in (("ece", "ECE (15 bins)"), ("brier", "Brier")):
        if key in base or key in refined:
            b, r = base.get(key), refined.get(key)
            d = "" if b is None or r is None else f"{r - b:+.4f}"
            rows.append((label, *("-" if v is None else f"{v:.4f}" for v in (b, r)), d))
    return rows


def summary_rows(metrics: Mapping[str, Any]) -> list[tuple[str, str, str, str]]:
    """(metric, base, refined, refined - base) rows, accuracies in percent.

    Used for report.md and for the CLI's summary table so both show the same numbers.
    """
    base, refined, delta = metrics["base"], metrics["refined"], metrics.get("delta", {})
    bench = metrics["benchmark"]
    rows: list[tuple[str, str, str, str]] = []
    if bench == "pairwise":
        rows.append(
            (
                "accuracy (%)",
                _pct(base["accuracy"]),
                _pct(refined["accuracy"]),
                _signed(delta.get("accuracy")),
            )
        )
        rows.append(
            ("accuracy 95% CI", _ci(base["ci95"]), _ci(refined["ci95"]), _ci(delta.get("ci95")))
        )
        rows.append(("ties", str(base["ties"]), str(refined["ties"]), ""))
        rows += _calibration_rows(base, refined)
        if "mcnemar_p" in delta:
            rows.append(
                ("pairs fixed / broken", "", "", f"{delta['improved']} / {delta['worsened']}")
            )
            rows.append(("McNemar p", "", "", format_p(delta["mcnemar_p"])))
    elif bench == "rm-bench":
        for dom, entry in base.items():
            if not isinstance(entry, Mapping):
                continue
            for level in ("easy", "normal", "hard", "avg"):
                d = delta.get(dom, {}).get("delta") if level == "avg" else None
                d_text = (
                    _signed(d) if d is not None else _signed(refined[dom][level] - entry[level])
                )
                rows.append(
                    (f"{dom} {level} (%)", _pct(entry[level]), _pct(refined[dom][level]), d_text)
                )
        rows.append(
            (
                "overall (%)",
                _pct(base["overall"]),
                _pct(refined["overall"]),
                _signed(delta.get("overall", {}).get("delta")),
            )
        )
        rows.append(
            (
                "overall 95% CI",
                _ci(metrics.get("overall_ci95", {}).get("base")),
                _ci(metrics.get("overall_ci95", {}).get("refined")),
                _ci(delta.get("overall", {}).get("ci95")),
            )
        )
    elif bench == "reward-bench":
        for key in ("Chat", "Chat Hard", "Safety", "Reasoning"):
            if key in base:
                rows.append(
                    (
                        f"{key} (%)",
                        _pct(base[key]),
                        _pct(refined[key]),
                        _signed(refined[key] - base[key]),
                    )
                )
        rows.append(
            ("score (%)", _pct(base["score"]), _pct(refined["score"]), _signed(delta.get("score")))
        )
        rows += _calibration_rows(base, refined)
        cis = metrics.get("score_ci95", {})
        rows.append(
            ("score 95% CI", _ci(cis.get("base")), _ci(cis.get("refined")), _ci(delta.get("ci95")))
        )
    return rows


def verdict_of(metrics: Mapping[str, Any]) -> str:
    """The one-sentence verdict stored in metrics["delta"]["verdict"] ("" if absent)."""
    return str(metrics.get("delta", {}).get("verdict", ""))


def make_plots(
    metrics: Mapping[str, Any],
    out_dir: str | Path,
    *,
    base_chosen: Any,
    base_rejected: Any,
    refined_chosen: Any,
    refined_rejected: Any,
) -> dict[str, Path]:
    """Write the PNG plots for a run; returns {title: path}.

    Rewards are in the EBRM normalised units (base and refined comparable on one axis).
    """
    out = Path(out_dir)
    bc, br = np.asarray(base_chosen, dtype=float), np.asarray(base_rejected, dtype=float)
    rc, rr = np.asarray(refined_chosen, dtype=float), np.asarray(refined_rejected, dtype=float)
    made: dict[str, Path] = {
        "Chosen vs rejected reward distributions": plots.reward_distributions(
            out / "reward_distributions.png", {"base": (bc, br), "refined": (rc, rr)}
        ),
        "Base vs refined reward per response": plots.base_vs_refined(
            out / "base_vs_refined.png",
            np.concatenate([bc.ravel(), br.ravel()]),
            np.concatenate([rc.ravel(), rr.ravel()]),
            is_chosen=np.concatenate([np.ones(bc.size, bool), np.zeros(br.size, bool)]),
        ),
    }
    if metrics["benchmark"] == "rm-bench":
        made["RM-Bench 3x3 matrices"] = plots.rmbench_heatmaps(
            out / "rmbench_heatmaps.png", {"base": metrics["base"], "refined": metrics["refined"]}
        )
    cal_sides = {
        name: {"reliability": side["calibration"]["reliability"], "ece": side["ece"]}
        for name in ("base", "refined")
        if "calibration" in (side := metrics[name])
    }
    if cal_sides:
        made["Reliability diagram"] = plots.reliability_diagram(out / "reliability.png", cal_sides)
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
        "- base calibration is sigmoid(r_chosen - r_rejected) in the base RM's raw units; "
        "refined calibration is the energy posterior's P(chosen > rejected). Every pair is "
        "scored in both orders.",
        "",
    ]
    verdict = verdict_of(metrics)
    if verdict:
        lines += [f"**{verdict}**", ""]
    lines += ["| metric | base | refined | refined - base |", "| --- | --- | --- | --- |"]
    lines += [f"| {m} | {b} | {r} | {d} |" for m, b, r, d in summary_rows(metrics)]
    lines.append("")
    for title, path in plot_files.items():
        name = Path(path).name
        lines += [f"## {title}", "", f"![{title}]({name})", ""]
    lines += [f"Full numbers: [`{METRICS_FILE}`]({METRICS_FILE}).", ""]
    return "\n".join(lines)


def write_outputs(
    metrics: Mapping[str, Any],
    out_dir: str | Path,
    *,
    base_chosen: Any,
    base_rejected: Any,
    refined_chosen: Any,
    refined_rejected: Any,
    make_figures: bool = True,
) -> dict[str, Path]:
    """Write metrics.json (atomically), the plots and report.md into `out_dir`.

    Returns:
        {"metrics": path, "report": path, <plot title>: path, ...}
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {"metrics": atomic_write_json(out / METRICS_FILE, dict(metrics))}
    figures = (
        make_plots(
            metrics,
            out,
            base_chosen=base_chosen,
            base_rejected=base_rejected,
            refined_chosen=refined_chosen,
            refined_rejected=refined_rejected,
        )
        if make_figures
        else {}
    )
    files["report"] = atomic_write_text(out / REPORT_FILE, render_report(metrics, figures))
    files.update(figures)
    logger.info("wrote %s, %s and %d plots to %s", METRICS_FILE, REPORT_FILE, len(figures), out)
    return files
