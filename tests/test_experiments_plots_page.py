"""experiments/report.py --plots-from: a run's plots, small, and the results page's PLOTS block."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from ebrm.evaluation import evaluate
from tests.evaluation.test_fair import _pairs, model_with_references  # noqa: F401
from tests.scripts import load_script

ROOT = Path(__file__).resolve().parents[1]
report = load_script(Path("experiments/report.py"), "experiments_report")


@pytest.fixture
def run_dir(tmp_path, model_with_references):  # noqa: F811
    run = tmp_path / "demo"
    pairs, _ = _pairs()
    evaluate(model_with_references, "pairwise", pairs, run, n_boot=50, progress=False)
    metrics = json.loads((run / "metrics.json").read_text())
    metrics["split"] = {"train": 150, "validation": 60, "test": 60, "seed": 0}
    (run / "metrics.json").write_text(json.dumps(metrics))
    (run / "model").mkdir()
    history = [
        {"step": s, "train_loss": 1.0 / s, "val_accuracy_mean": a, "val_accuracy_base": 0.6}
        for s, a in ((10, 0.6), (20, 0.7), (30, 0.65))
    ]
    (run / "model" / "history.json").write_text(json.dumps(history))
    train = {"train_pairs": 150, "validation": {"best_step": 20, "pairs": 60}}
    (run / "model" / "config.json").write_text(json.dumps({"train": train}))
    return run


def test_plots_from_a_run_fill_the_plots_block_with_small_pngs(tmp_path, run_dir):
    docs = tmp_path / "docs"
    docs.mkdir()
    page = docs / "results.md"
    page.write_text("# r\n\n<!-- PLOTS:BEGIN -->\nstale\n<!-- PLOTS:END -->\n\n## after\n")
    assert report.main(["--plots-from", str(run_dir), "--docs", str(page)]) == 0
    text = page.read_text()
    assert "stale" not in text and text.endswith("<!-- PLOTS:END -->\n\n## after\n")
    images = re.findall(r"!\[[^]]*\]\(([^)]+)\)", text)
    names = {Path(i).name for i in images}
    assert {"reward_distributions.png", "reliability.png", "risk_coverage.png"} <= names
    assert "training_curve.png" in names
    total = 0
    for rel in images:
        assert rel.startswith("assets/demo/")
        size = (docs / rel).stat().st_size
        assert 0 < size <= 60_000, rel
        total += size
    assert total <= 400_000
    assert "seed 0" in text and "train 150, validation 60, test 60" in text
    assert "ebrm demo --out runs/demo" in text and "logical cores" in text


def test_plots_from_needs_a_page(run_dir):
    with pytest.raises(SystemExit, match="--plots-from needs --docs"):
        report.main(["--plots-from", str(run_dir)])
