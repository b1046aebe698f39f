"""Aggregate the cached cells of `experiments/run.py` into results.json and results.md."""

from __future__ import annotations

import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path

from ebrm._io import atomic_write_json, atomic_write_text

try:  # run as a script (experiments/ on sys.path) or imported as experiments.report
    from fair_report import fair_section
except ImportError:  # pragma: no cover
    from experiments.fair_report import fair_section

BASE_NAMES = {
    "minilm-frozen": "frozen MiniLM + BT head",
    "minilm-finetuned": "fully fine-tuned MiniLM BT",
}


def _ms(values: list[float], scale: float = 100.0, signed: bool = False, digits: int = 1) -> str:
    values = [v for v in values if v is not None]
    if not values:
        return "-"
    mean = statistics.fmean(values) * scale
    std = statistics.stdev(values) * scale if len(values) > 1 else 0.0
    sign = "+" if signed else ""
    return f"{mean:{sign}.{digits}f} ± {std:.{digits}f}"


def _sig(rows: list[dict]) -> str:
    """How many seeds' paired 95% intervals of refined - base lie above 0 / include 0 / below."""
    up = sum(r["hh"]["ci95"][0] > 0 for r in rows)
    down = sum(r["hh"]["ci95"][1] < 0 for r in rows)
    return f"{up} / {len(rows) - up - down} / {down}"


def load_rows(out: Path) -> list[dict]:
    rows = []
    for path in sorted((out / "cells").glob("*.json")):
        rows += json.loads(path.read_text())
    return rows


def _groups(rows, noise):
    groups: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        if row["noise"] == noise:
            groups[row["label"]].append(row)
    return groups


def _rmb(rows, dom, key="delta"):
    return [r["rmbench"][dom][key] for r in rows if dom in r["rmbench"]]


def main_table(rows: list[dict], noise: float = 0.0) -> list[str]:
    groups = _groups(rows, noise)
    if not groups:
        return []
    any_rows = next(iter(groups.values()))
    base_by_seed = {r["seed"]: r for g in groups.values() for r in g}
    seeds = sorted(base_by_seed)
    base = [base_by_seed[s] for s in seeds]
    name = BASE_NAMES.get(base[0]["base"], base[0]["base"])
    plural = "s" if len(seeds) != 1 else ""
    lines = [
        f"| reward (noise {noise:.0%}, {len(seeds)} seed{plural}) | HH test acc (%) | "
        "refined − base (pts) | seeds: CI > 0 / ∋ 0 / < 0 | RM-Bench chat Δ | RM-Bench safety Δ |",
        "| --- | --- | --- | --- | --- | --- |",
        f"| base RM ({name}) | {_ms([r['hh']['base'] for r in base])} | | | "
        f"{_ms(_rmb(base, 'chat', 'base'))} (abs) | {_ms(_rmb(base, 'safety', 'base'))} (abs) |",
    ]
    del any_rows
    # calibration is not here: the refined P is temperature-scaled and the base sigmoid is
    # not, so the two are not comparable; the like-for-like tables (fair_report) compare them
    for label, group in groups.items():
        lines.append(
            f"| {label} | {_ms([r['hh']['refined'] for r in group])} | "
            f"{_ms([r['hh']['delta'] for r in group], signed=True)} | {_sig(group)} | "
            f"{_ms(_rmb(group, 'chat'), signed=True)} | {_ms(_rmb(group, 'safety'), signed=True)} "
            "|"
        )
    return lines


def noise_table(rows: list[dict]) -> list[str]:
    clean = {(r["seed"]): r["hh"]["base"] for r in rows if r["noise"] == 0}
    labels = [
        "default (grid, chosen on val)",
        "paper (paper preset + hybrid-init ascent)",
        "nce+bt",
        "nce+margin",
        "reference: fresh BT head on labels",
    ]
    noises = sorted({r["noise"] for r in rows if r["noise"] > 0})
    if not noises:
        return []
    labels = [lab for lab in labels if any(r["label"] == lab and r["noise"] > 0 for r in rows)]
    lines = [
        "| label noise | base HH acc (%) | "
        + " | ".join(f"{lab}: Δ (pts), recovered" for lab in labels)
        + " |",
        "| --- | --- | " + " | ".join("---" for _ in labels) + " |",
    ]
    for noise in noises:
        groups = _groups(rows, noise)
        some = next(iter(groups.values()))
        cells = []
        for lab in labels:
            group = groups.get(lab, [])
            if not group:
                cells.append("-")
                continue
            recovered = [
                r["hh"]["delta"] / (clean[r["seed"]] - r["hh"]["base"])
                for r in group
                if r["seed"] in clean and clean[r["seed"]] - r["hh"]["base"] > 0
            ]
            cells.append(
                f"{_ms([r['hh']['delta'] for r in group], signed=True)}, "
                f"{_ms(recovered, signed=True)} %"
            )
        lines.append(
            f"| {noise:.0%} | {_ms([r['hh']['base'] for r in some])} | " + " | ".join(cells) + " |"
        )
    return lines


def seed_table(rows: list[dict], noise: float = 0.0) -> list[str]:
    lines = [
        "| reward | seed | HH base | HH refined | Δ [paired 95% CI] | McNemar p | "
        "safety Δ [CI] | chat Δ [CI] |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for label, group in _groups(rows, noise).items():
        for r in sorted(group, key=lambda r: r["seed"]):
            h = r["hh"]

            def rm(dom, r=r):
                d = r["rmbench"].get(dom)
                if not d:
                    return "-"
                lo, hi = d["ci95"]
                return f"{100 * d['delta']:+.1f} [{100 * lo:+.1f}, {100 * hi:+.1f}]"

            lines.append(
                f"| {label} | {r['seed']} | {100 * h['base']:.1f} | {100 * h['refined']:.1f} | "
                f"{100 * h['delta']:+.1f} [{100 * h['ci95'][0]:+.1f}, {100 * h['ci95'][1]:+.1f}] "
                f"| {h['mcnemar_p']:.3g} | {rm('safety')} | {rm('chat')} |"
            )
    return lines


DEFAULT = "default (grid, chosen on val)"
PAPER = "paper (paper preset + hybrid-init ascent)"


def _mean(values) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.fmean(values) if values else None


def targets_section(rows: list[dict]) -> list[str]:
    """The issue's targets, checked on the means over seeds (per-seed intervals above)."""
    lines = ["| target | measured (mean over seeds) | met? |", "| --- | --- | --- |"]
    for base in sorted({r["base"] for r in rows}, key=lambda b: (b != "minilm-frozen", b)):
        name = BASE_NAMES.get(base, base)
        group = [r for r in rows if r["base"] == base and r["noise"] == 0]
        default = [r for r in group if r["label"] == DEFAULT]
        if default:
            deltas = {"HH test": _mean(r["hh"]["delta"] for r in default)}
            for dom in ("chat", "safety"):
                deltas[f"RM-Bench {dom}"] = _mean(_rmb(default, dom))
            worst = min(v for v in deltas.values() if v is not None)
            text = ", ".join(f"{k} {100 * v:+.1f}" for k, v in deltas.items() if v is not None)
            lines.append(
                f"| default does no harm (Δ ≥ −1.0 pt everywhere), {BASE_NAMES.get(base, base)}"
                f" | {text} | {'yes' if worst >= -0.01 else 'no'} |"
            )
        by_label: dict[str, list[dict]] = defaultdict(list)
        for r in group:
            if not r["label"].startswith("reference"):
                by_label[r["label"]].append(r)
        if base == "minilm-frozen" and by_label:  # another process may not have written yet
            best = max(by_label, key=lambda k: _mean(r["hh"]["delta"] for r in by_label[k]))
            best_delta = _mean(r["hh"]["delta"] for r in by_label[best])
            refs: dict[str, list[dict]] = defaultdict(list)
            for r in group:
                if r["label"].startswith("reference"):
                    refs[r.get("method", "linear")].append(r)
            ref_text = "".join(
                f"; {method} reference head {100 * _mean(r['hh']['delta'] for r in ref):+.1f}"
                for method, ref in sorted(refs.items())
            )
            lines.append(
                f"| best mode ≥ +1.5 pts on HH test (frozen base) | {best}: "
                f"{100 * best_delta:+.1f}{ref_text} | {'yes' if best_delta >= 0.015 else 'no'} |"
            )
        if default:
            lines += _calibration_target(default, name)
        clean = {r["seed"]: r["hh"]["base"] for r in group}
        for noise in (0.25, 0.4):
            noisy = [r for r in rows if r["base"] == base and r["noise"] == noise]
            for label in sorted({r["label"] for r in noisy}):
                sel = [r for r in noisy if r["label"] == label and r["seed"] in clean]
                lost = _mean(clean[r["seed"]] - r["hh"]["base"] for r in sel)
                gained = _mean(r["hh"]["delta"] for r in sel)
                if lost is None or gained is None or label not in (DEFAULT, PAPER, "nce+bt"):
                    continue
                share = gained / lost if lost > 0 else float("nan")
                lines.append(
                    f"| {noise:.0%} noise: {label} recovers ≥ 30% of the lost accuracy, {name} "
                    f"({len(sel)} seeds) | lost "
                    f"{100 * lost:.1f} pts, Δ {100 * gained:+.1f} pts ({100 * share:+.0f}%) | "
                    f"{'yes' if share >= 0.3 else 'no'} |"
                )
    return lines


def _calibration_target(default: list[dict], name: str = "") -> list[str]:
    """ECE of the refined P against the calibrated base's, both temperature-scaled on the
    validation pairs (only cells that recorded the references can say)."""
    fair = [r for r in default if "uncertainty" in r["hh"]]
    if not fair:
        return [
            f"| ECE refined ≤ ECE base, both temperature-scaled (default, HH test), {name} | not "
            "measured like for like in these cells (the base sigmoid had no temperature) | ? |"
        ]
    metrics = [r["hh"]["uncertainty"]["metrics"] for r in fair]
    ece_r = _mean(m["refined"]["ece"] for m in metrics)
    ece_b = _mean(m["base-calibrated"]["ece"] for m in metrics)
    brier_r = _mean(m["refined"]["brier"] for m in metrics)
    brier_b = _mean(m["base-calibrated"]["brier"] for m in metrics)
    outcomes = [r["hh"]["uncertainty"]["verdicts"]["ece"] for r in fair]
    worse = sum(o["candidate_vs_best_reference"]["outcome"] == "worse" for o in outcomes)
    better = sum(o["candidate_vs_best_reference"]["outcome"] == "better" for o in outcomes)
    return [
        f"| ECE refined ≤ ECE base, both temperature-scaled (default, HH test, {len(fair)} "
        f"seeds), {name} | {ece_r:.3f} vs {ece_b:.3f} (Brier {brier_r:.3f} vs "
        f"{brier_b:.3f}); vs the best reference per seed: {better} better, {worse} worse, "
        "the rest ∋ 0 | "
        f"{'yes' if ece_r <= ece_b else 'no'} |"
    ]


PROTOCOL = (
    "RM-Bench: chat (129 prompts) and safety-response (157 prompts), domain average of "
    "Easy/Normal/Hard. Accuracies in %, mean ± std over seeds; Δ = refined − base in "
    "points; a seed counts as CI > 0 only when its paired bootstrap 95% interval of Δ "
    "excludes 0. ECE: 15 bins over both orders of each pair; every probability compared is "
    "temperature-scaled on the validation pairs (the like-for-like tables); a constant "
    "P = 0.5 has ECE 0 and Brier 0.25, so read ECE with Brier."
)
NOISE_HEADING = (
    "Label noise (base RM and EBRM trained on flipped labels; validation and test labels clean)"
)
# the block of the results page (docs/results.md) that `--docs` rewrites; nothing else in
# the page is touched, and nothing between the markers is ever edited by hand
RESULTS_BEGIN, RESULTS_END = "<!-- RESULTS:BEGIN -->", "<!-- RESULTS:END -->"


def commands(rows: list[dict], fallback: str | None = None) -> list[str]:
    """The `experiments/run.py` commands that wrote these cells (each row records its own),
    once each, frozen base first; `fallback` stands for cells that recorded none."""
    ordered = sorted(rows, key=lambda r: (r["base"] != "minilm-frozen", r["base"], r["noise"]))
    out: list[str] = []
    for row in ordered:
        command = row.get("command") or fallback or "(not recorded in the cell)"
        if command not in out:
            out.append(command)
    return out


def _base_heading(rows: list[dict]) -> str:
    name = BASE_NAMES.get(rows[0]["base"], rows[0]["base"])
    lengths = sorted({r["max_length"] for r in rows if r.get("max_length")})
    return name + (f" (max length {', '.join(map(str, lengths))} tokens)" if lengths else "")


def results_markdown(
    rows: list[dict],
    *,
    command: str | None = None,
    rendered_by: str | None = None,
    per_seed: bool = True,
    level: int = 3,
) -> str:
    """The targets and one table per base RM (per-seed rows too unless `per_seed` is False),
    under markdown headings of `level` (their sub-headings one deeper). The header names the
    commands that wrote the cells (`command` for cells that recorded none) and, when given,
    the command that rendered this text."""
    h, sub = "#" * level, "#" * (level + 1)
    n_test = rows[0]["hh"]["n"] if rows else 0
    text = [
        "Cells written by:",
        "",
        "```bash",
        *commands(rows, command),
        "```",
        "",
        *([f"Rendered by `{rendered_by}`.", ""] if rendered_by else []),
        f"HH-RLHF test split: {n_test} pairs per seed (prompt-grouped split 60/15/25 % per "
        f"seed); {PROTOCOL}",
        "",
        f"{h} Targets",
        "",
        *targets_section(rows),
        "",
    ]
    bases = sorted({r["base"] for r in rows}, key=lambda b: (b != "minilm-frozen", b))
    for base in bases:
        mine = [r for r in rows if r["base"] == base]
        text += [f"{h} Base: {_base_heading(mine)}", "", *main_table(mine), ""]
        text += fair_section(mine, sub)
        noise = noise_table(mine)
        if noise:
            text += [
                f"{sub} {NOISE_HEADING}",
                "",
                "recovered = Δ / (clean base accuracy − noisy base accuracy), per seed.",
                "",
                *noise,
                "",
            ]
        if per_seed:
            text += [f"{sub} Per seed (noise 0)", "", *seed_table(mine), ""]
    return "\n".join(text)


def write_results(
    out: Path, *, command: str | None = None, rendered_by: str | None = None
) -> list[dict]:
    """OUT/results.json (every row) and OUT/results.md (the tables, per-seed rows included);
    returns the rows. `command`: for cells that recorded none."""
    rows = load_rows(out)
    atomic_write_json(out / "results.json", {"commands": commands(rows, command), "rows": rows})
    title = "## Results: EBRM on MiniLM Bradley-Terry RMs (HH-RLHF harmless, RM-Bench)"
    body = results_markdown(rows, command=command, rendered_by=rendered_by)
    atomic_write_text(out / "results.md", f"{title}\n\n{body}")
    return rows


def replace_marked_block(page: Path, begin: str, end: str, block: str, *, what: str) -> None:
    """Replace the text between `page`'s `begin` and `end` markers with `block` (atomically);
    without the markers, exit naming them and `what` belongs there, leaving the page as is."""
    text = page.read_text(encoding="utf-8")
    start, stop = text.find(begin), text.find(end)
    if start < 0 or stop < start:
        raise SystemExit(
            f"{page}: no '{begin}' ... '{end}' block to fill; add the two markers where {what} "
            "belong"
        )
    atomic_write_text(page, f"{text[: start + len(begin)]}\n{block}\n{text[stop:]}")


def update_results_page(
    page: Path,
    rows: list[dict],
    *,
    command: str | None = None,
    rendered_by: str | None = None,
    out: Path = Path("runs/experiments"),
) -> None:
    """Replace the text between the page's RESULTS markers with the generated tables."""
    block = results_markdown(
        rows, command=command, rendered_by=rendered_by, per_seed=False, level=4
    )
    footer = f"Per-seed rows with intervals and McNemar p-values: `{out.as_posix()}/results.md`."
    replace_marked_block(
        page, RESULTS_BEGIN, RESULTS_END, f"{block}\n{footer}", what="the results tables"
    )


def main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(description="Re-render the results of experiments/run.py.")
    ap.add_argument("out", type=Path, nargs="?", help="the --out directory of experiments/run.py")
    ap.add_argument(
        "--command",
        help="the run.py command to name for cells that did not record theirs (older cells)",
    )
    ap.add_argument(
        "--docs",
        type=Path,
        help="also rewrite the RESULTS block of this page (the site's results page: "
        "docs/results.md); with --plots-from, its PLOTS block",
    )
    ap.add_argument(
        "--plots-from",
        type=Path,
        metavar="RUN_DIR",
        help="draw the plots of this run (an `ebrm demo` or `ebrm eval` --out) small into "
        "docs/assets/<its name>/ and write them into the --docs page's PLOTS block",
    )
    ap.add_argument(
        "--plots-command",
        default="ebrm demo --out runs/demo",
        help="the command that made RUN_DIR, named above the plots",
    )
    args = ap.parse_args(argv)
    if args.out is None and args.plots_from is None:
        raise SystemExit("give the --out directory of experiments/run.py, or --plots-from RUN_DIR")
    if args.plots_from is not None:
        if args.docs is None:
            raise SystemExit("--plots-from needs --docs PAGE (the page whose PLOTS block to fill)")
        _plots(args.plots_from, args.docs, command=args.plots_command)
    if args.out is None:
        return 0
    if not (args.out / "cells").is_dir():
        raise SystemExit(f"{args.out}/cells not found: run experiments/run.py --out {args.out}")
    given = argv if argv is not None else sys.argv[1:]
    rendered_by = " ".join(["python experiments/report.py", *given])
    rows = write_results(args.out, command=args.command, rendered_by=rendered_by)
    if args.docs:
        update_results_page(
            args.docs, rows, command=args.command, rendered_by=rendered_by, out=args.out
        )
    print(f"wrote {args.out / 'results.md'}" + (f" and {args.docs}" if args.docs else ""))
    return 0


def _plots(run_dir: Path, page: Path, *, command: str) -> None:
    import datetime as dt

    try:
        import plots_page
    except ImportError:  # pragma: no cover
        from experiments import plots_page

    if not (run_dir / "metrics.json").is_file():
        raise SystemExit(f"{run_dir}/metrics.json not found: give the --out of `ebrm demo`")
    assets = page.parent / "assets" / run_dir.name
    made = plots_page.render_run_plots(run_dir, assets)
    date = dt.datetime.fromtimestamp(
        (run_dir / "metrics.json").stat().st_mtime, tz=dt.timezone.utc
    ).date()
    block = plots_page.plots_block(run_dir, made, page, command=command, date=str(date))
    replace_marked_block(page, plots_page.PLOTS_BEGIN, plots_page.PLOTS_END, block,
                         what="the plots")  # fmt: skip
    print(f"wrote {len(made)} plots to {assets} and the PLOTS block of {page}")


if __name__ == "__main__":
    raise SystemExit(main())
