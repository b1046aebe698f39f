"""The plots of one run, small, in docs/assets/, and the PLOTS block of the results page.

    python experiments/report.py --plots-from runs/demo --docs docs/results.md

re-draws the evaluation plots of RUN_DIR (its metrics.json and examples-<reward>.jsonl, the
training curve from model/history.json and model/config.json) at a low resolution into
docs/assets/<run name>/ and replaces the page's `<!-- PLOTS:BEGIN -->` ... END block with
them and what they were drawn from (data, split, seed, command, machine). Nothing is
re-computed: the numbers are the run's own.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from ebrm._io import atomic_write
from ebrm.energy.history import HISTORY_NAME, history_figure
from ebrm.evaluation.benchmark import reward_names
from ebrm.evaluation.names import METRICS_FILE
from ebrm.evaluation.report import examples_file, make_plots

ROOT = Path(__file__).resolve().parent.parent
PLOTS_BEGIN, PLOTS_END = "<!-- PLOTS:BEGIN -->", "<!-- PLOTS:END -->"
# 75 dpi keeps each PNG near 25-55 KB (the site's budget: <= 60 KB each, <= 400 KB in all)
DOCS_DPI = 75
CURVE_FILE = "training_curve.png"


def _machine() -> dict[str, Any]:
    # the one reader of CPU/cores/GPU is the benchmarks' renderer; load it by path
    spec = importlib.util.spec_from_file_location(
        "render_docs", ROOT / "benchmarks" / "render_docs.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.machine()


def _scores(path: Path) -> SimpleNamespace:
    """The chosen and rejected rewards of examples-<reward>.jsonl (one record per pair)."""
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    chosen = np.array([r["score_chosen"] for r in rows], dtype=np.float64)
    rejected = np.array([r["score_rejected"] for r in rows], dtype=np.float64)
    return SimpleNamespace(chosen=chosen, rejected=rejected)


def render_run_plots(run_dir: Path, assets: Path, *, dpi: int = DOCS_DPI) -> dict[str, Path]:
    """Re-draw RUN_DIR's plots into `assets` at `dpi`; returns {title: path}."""
    metrics = json.loads((run_dir / METRICS_FILE).read_text(encoding="utf-8"))
    scores = {
        name: _scores(run_dir / examples_file(name))
        for name in reward_names(metrics)
        if (run_dir / examples_file(name)).is_file()
    }
    assets.mkdir(parents=True, exist_ok=True)
    made = make_plots(metrics, assets, scores, dpi=dpi)
    model = run_dir / "model"
    if (model / HISTORY_NAME).is_file():
        history = json.loads((model / HISTORY_NAME).read_text(encoding="utf-8"))
        train = json.loads((model / "config.json").read_text(encoding="utf-8")).get("train", {})
        validation = train.get("validation", {})
        fig = history_figure(
            history,
            chosen_step=validation.get("best_step"),
            train_pairs=train.get("train_pairs"),
            validation_pairs=validation.get("pairs"),
        )
        fig.set_dpi(dpi)
        path = assets / CURVE_FILE
        made["Training curve (the chosen checkpoint marked)"] = atomic_write(
            path, lambda tmp: fig.savefig(tmp, format="png", dpi=dpi)
        )
    return made


def plots_block(
    run_dir: Path, made: dict[str, Path], page: Path, *, command: str, date: str
) -> str:
    """The markdown between the PLOTS markers: provenance, then one image per plot."""
    metrics = json.loads((run_dir / METRICS_FILE).read_text(encoding="utf-8"))
    split = metrics.get("split") or {}
    m = _machine()
    gpu = f"GPU {m['gpu']}" if m.get("gpu") else "no GPU"
    sizes = ", ".join(f"{k} {split[k]}" for k in ("train", "validation", "test") if k in split)
    lines = [
        "<!-- written by experiments/report.py --plots-from; not edited by hand -->",
        "",
        f"- data: {metrics.get('data', '')}; {metrics.get('n')} {metrics.get('benchmark')} "
        f"units evaluated",
        f"- split: {sizes or 'not recorded'}; seed {split.get('seed', 'not recorded')}",
        f"- command: `{command}` ({date})",
        f"- machine: {m['cpu']}, {m['cores']} logical cores, {gpu}",
        "",
    ]
    for title, path in made.items():
        rel = Path(path).resolve().relative_to(page.resolve().parent).as_posix()
        lines += [f"**{title}**", "", f"![{title}]({rel})", ""]
    return "\n".join(lines)
