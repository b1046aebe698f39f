"""The evaluation summary as the CLI prints it: rewards side by side, then the differences."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def print_summary(console: Any, metrics: Mapping[str, Any], title: str) -> None:
    """Print `summary_rows(metrics)` as one table of the rewards and one of "<reward> - base".

    With the references (base-calibrated, laplace, ensemble) there are five rewards and four
    differences: one table of ten columns does not fit a terminal, two do.
    """
    from rich.table import Table

    from ebrm.evaluation import summary_header, summary_rows
    from ebrm.evaluation.benchmark import BASE, REFINED

    header, rows = summary_header(metrics), summary_rows(metrics)
    split = len(metrics.get("rewards", (BASE, REFINED))) + 1
    parts = [(title, list(range(split)))]
    if split < len(header):
        parts.append(
            ("each reward - base, paired over the same rows", [0, *range(split, len(header))])
        )
    for name, columns in parts:
        table = Table(title=name)
        for i in columns:
            table.add_column(header[i], justify="left" if i == 0 else "right")
        for row in rows:
            cells = [row[i] for i in columns]
            if any(cells[1:]):
                table.add_row(*cells)
        console.print(table)
    from ebrm.evaluation.report import incomplete_note

    if note := incomplete_note(metrics):
        console.print(f"[bold yellow]{note}[/]")
    console.print(f"[bold]{metrics['delta']['verdict']}[/]")
    for sentence in (metrics.get("uncertainty") or {}).get("sentences", []):
        console.print(f"- {sentence}")
