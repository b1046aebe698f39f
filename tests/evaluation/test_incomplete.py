"""A benchmark run on part of its domains or sections says so wherever its headline number
appears (report.md, the CLI summary, the verdict): "overall over 2 of 4 domains (incomplete:
not comparable with published numbers)", never a bare "overall 43.7" (issue 25 item 4)."""

from __future__ import annotations

import io
import re

import numpy as np
import pytest

from ebrm.evaluation.report import incomplete_note, render_report, summary_rows
from ebrm.evaluation.rewardbench import rewardbench_metrics
from ebrm.evaluation.rmbench import rmbench_metrics

NOTE = "(incomplete: not comparable with published numbers)"


def _rmbench(domains):
    rng = np.random.default_rng(0)
    n = len(domains)
    c, r = rng.normal(size=(n, 3)), rng.normal(size=(n, 3))
    return rmbench_metrics(domains, c, r, c + 0.1, r, n_boot=100)


def _console_text(metrics) -> str:
    from rich.console import Console

    from ebrm.cli._summary import print_summary

    console = Console(file=io.StringIO(), width=200)
    print_summary(console, metrics, "title")
    return console.file.getvalue()


def test_rmbench_on_two_of_four_domains_is_qualified_everywhere():
    metrics = _rmbench(["chat"] * 4 + ["code"] * 4)
    assert metrics["complete"] is False  # what metrics.json already recorded
    expected = f"overall over 2 of 4 domains {NOTE}"
    assert incomplete_note(metrics) == expected
    labels = [row[0] for row in summary_rows(metrics)]
    assert "overall over 2 of 4 domains (%)" in labels and "overall (%)" not in labels
    report = render_report(metrics, {})
    assert expected in report
    # every line with the overall number in it carries the qualification
    for line in report.splitlines():
        if re.search(r"\boverall\b(?! 95% CI)", line) and "%" in line:
            assert "2 of 4 domains" in line, line
    assert "over 2 of 4 domains (incomplete)" in metrics["delta"]["verdict"]
    printed = _console_text(metrics)
    assert expected in " ".join(printed.split())
    assert "overall over 2 of 4 domains (%)" in printed


def test_rmbench_on_all_four_domains_is_unqualified():
    metrics = _rmbench(["chat", "code", "math", "safety"] * 2)
    assert metrics["complete"] is True
    assert incomplete_note(metrics) == ""
    assert "overall (%)" in [row[0] for row in summary_rows(metrics)]
    assert "incomplete" not in render_report(metrics, {}) + _console_text(metrics)


@pytest.mark.parametrize(
    ("subsets", "note"),
    [
        (["alpacaeval-easy", "mt-bench-easy", "donotanswer", "donotanswer"],
         f"score over 2 of 4 sections {NOTE}"),  # Chat and Safety
        (["alpacaeval-easy", "mt-bench-hard", "donotanswer", "math-prm"], ""),  # all four
    ],
)  # fmt: skip
def test_rewardbench_sections(subsets, note):
    c = np.arange(len(subsets), dtype=float)
    metrics = rewardbench_metrics(subsets, c, c - 1, c, c - 2, n_boot=100)
    assert incomplete_note(metrics) == note
    assert (note in render_report(metrics, {})) if note else True
