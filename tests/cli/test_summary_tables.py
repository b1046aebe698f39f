"""The evaluation summary fits an 80-column terminal: nothing cut with "…" (issue 25, item 8)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from rich.console import Console

from ebrm.cli._summary import print_summary
from ebrm.evaluation import summary_header, summary_rows

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "metrics" / "v1"


def _render(metrics: dict, width: int) -> str:
    console = Console(width=width, record=True, file=io.StringIO())
    print_summary(console, metrics, "held-out test split: 90 pairs (a long data description)")
    return console.export_text()


@pytest.mark.parametrize("benchmark", ["pairwise", "rm-bench"])
@pytest.mark.parametrize("width", [80, 100])
def test_summary_tables_fit_without_cutting_a_word(benchmark, width):
    metrics = json.loads((GOLDEN / benchmark / "metrics.json").read_text("utf-8"))
    text = _render(metrics, width)
    assert "…" not in text
    assert max(len(line) for line in text.splitlines()) <= width
    # every word of a header or row label is there whole, or broken only after its hyphens
    tokens = set(text.translate(str.maketrans("│┃", "  ")).split())
    labels = [*summary_header(metrics), *(row[0] for row in summary_rows(metrics))]
    for word in {w for label in labels for w in label.split()}:
        pieces = word.split("-")
        broken = [p + "-" for p in pieces[:-1]] + pieces[-1:]
        assert word in tokens or set(broken) <= tokens, word


def test_a_wide_terminal_keeps_one_line_headers():
    metrics = json.loads((GOLDEN / "pairwise" / "metrics.json").read_text("utf-8"))
    text = _render(metrics, 140)
    assert "base-calibrated - base" in text and "AURC (risk-coverage)" in text
