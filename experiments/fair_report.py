"""The like-for-like tables (issue 14): the energy head against a calibrated base, a Laplace
BT head and a bootstrap ensemble of BT heads, from the cells of `experiments/run.py`.

Rows of the default variant carry `hh.uncertainty` (every reward's metrics on the HH test
split, P(chosen > rejected) temperature-scaled on the validation pairs), `hh.calibration`
(raw and scaled ECE / Brier / NLL) and `std_shift` (std on RM-Bench vs the HH test split).
"""

from __future__ import annotations

import statistics
from collections import Counter

DEFAULT_LABEL = "default (grid, chosen on val)"
REWARDS = ("base-calibrated", "refined", "laplace", "ensemble")
AXES = (
    ("accuracy", "accuracy (%)", 100.0),
    ("ece", "ECE", 1.0),
    ("brier", "Brier", 1.0),
    ("nll", "NLL", 1.0),
    ("selective_accuracy_80", "sel. acc. @80% (%)", 100.0),
    ("selective_accuracy_50", "sel. acc. @50% (%)", 100.0),
    ("aurc", "AURC", 1.0),
)


def _ms(values, scale: float, digits: int) -> str:
    values = [v * scale for v in values if v is not None]
    if not values:
        return "-"
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.fmean(values):.{digits}f} ± {sd:.{digits}f}"


def _rows(rows: list[dict], noise: float) -> list[dict]:
    return [
        r
        for r in rows
        if r["noise"] == noise and r["label"] == DEFAULT_LABEL and "uncertainty" in r["hh"]
    ]


def metrics_table(rows: list[dict]) -> list[str]:
    """One line per reward, mean ± std over seeds of every axis (scaled probabilities)."""
    header = ["reward", "ECE raw", *(label for _, label, _ in AXES)]
    out = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    raw_name = {"base-calibrated": "base", "refined": "refined"}
    for name in REWARDS:
        raw = [
            r["hh"]["calibration"][raw_name.get(name, name)]["raw"]["ece"]
            for r in rows
            if r["hh"].get("calibration")
        ]
        cells = [name, _ms(raw, 1.0, 3)]
        for axis, _, scale in AXES:
            values = [r["hh"]["uncertainty"]["metrics"][name][axis] for r in rows]
            cells.append(_ms(values, scale, 1 if scale == 100.0 else 3))
        out.append("| " + " | ".join(cells) + " |")
    return out


def verdict_table(rows: list[dict]) -> list[str]:
    """Per axis: which reward was best (seeds), and the energy head against the best
    reference with a paired 95% interval: better / no detectable difference / worse."""
    out = [
        "| axis | best reward (seeds) | refined vs best reference: better / ∋ 0 / worse (seeds) |",
        "| --- | --- | --- |",
    ]
    for axis, label, _ in AXES:
        verdicts = [r["hh"]["uncertainty"]["verdicts"][axis] for r in rows]
        best = Counter(v["best"] for v in verdicts)
        outcome = Counter(v["candidate_vs_best_reference"]["outcome"] for v in verdicts)
        best_text = ", ".join(f"{n} {c}" for n, c in best.most_common())
        counts = f"{outcome['better']} / {outcome['no detectable difference']} / {outcome['worse']}"
        out.append(f"| {label} | {best_text} | {counts} |")
    return out


def std_shift_table(rows: list[dict]) -> list[str]:
    """Mean std on HH test vs RM-Bench responses and AUROC(std_RMB > std_HH), per measure."""
    measures = [m for m in ("refined std", "refined spread", "laplace std", "ensemble std")
                if any(m in r.get("std_shift", {}) for r in rows)]  # fmt: skip
    if not measures:
        return []
    out = [
        "| measure | mean on HH test | mean on RM-Bench | AUROC (RM-Bench std > HH std) "
        "| seeds with AUROC CI > 0.5 |",
        "| --- | --- | --- | --- | --- |",
    ]
    for m in measures:
        s = [r["std_shift"][m] for r in rows if m in r.get("std_shift", {})]
        above = sum(x["auroc_ci95"][0] > 0.5 for x in s)
        out.append(
            f"| {m} | {_ms([x['mean_in'] for x in s], 1.0, 3)} | "
            f"{_ms([x['mean_out'] for x in s], 1.0, 3)} | {_ms([x['auroc'] for x in s], 1.0, 2)} "
            f"| {above} of {len(s)} |"
        )
    return out


def fair_section(rows: list[dict], sub: str) -> list[str]:
    """The like-for-like tables of one base RM, per noise rate present."""
    text: list[str] = []
    for noise in sorted({r["noise"] for r in rows}):
        mine = _rows(rows, noise)
        if not mine:
            continue
        seeds = ", ".join(str(s) for s in sorted(r["seed"] for r in mine))
        text += [
            f"{sub} Like for like: the default energy head vs the references "
            f"(noise {noise:.0%}, seeds {seeds})",
            "",
            "HH test split. Every P(chosen > rejected) is temperature-scaled on the validation "
            "pairs (ECE raw: before scaling); base-calibrated = the base RM's sigmoid with its "
            "own temperature; laplace / ensemble = a Laplace-posterior / 5-head bootstrap "
            "ensemble BT head on the same embeddings, training pairs and labels. Selective "
            "accuracy: on the most confident pairs by |P - 1/2|.",
            "",
            *metrics_table(mine),
            "",
            *verdict_table(mine),
            "",
            *std_shift_table(mine),
            "",
        ]
    return text
