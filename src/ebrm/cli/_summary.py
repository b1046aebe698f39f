"""The evaluation summary as the CLI prints it: rewards side by side, then the differences."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any


def print_summary(console: Any, metrics: Mapping[str, Any], title: str) -> None:
    """Print `summary_rows(metrics)` as one table of the rewards and one of "<reward> - base".

    With the references (base-calibrated, laplace, ensemble) there are five rewards and four
    differences: one table of ten columns does not fit a terminal, two do.
    """
    from rich.measure import Measurement

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
        kept = [cells for cells in ([row[i] for i in columns] for row in rows) if any(cells[1:])]
        names = [header[i] for i in columns]
        table = _table(name, names, kept)
        wide = console.options.update_width(10_000)
        if Measurement.get(console, wide, table).maximum > console.width:
            # a terminal too narrow for the table on one line a row: rich shrinks the widest
            # columns first and cuts their long words ("base-cali…", "(risk-cov…"); let
            # those words break after their hyphens, and fold what still does not fit
            table = _table(name, [_hyphens(h) for h in names], [
                [_hyphens(cells[0]), *cells[1:]] for cells in kept
            ])  # fmt: skip
        console.print(table)
    from ebrm.evaluation.report import incomplete_note

    if note := incomplete_note(metrics):
        console.print(f"[bold yellow]{note}[/]")
    console.print(f"[bold]{metrics['delta']['verdict']}[/]")
    for sentence in (metrics.get("uncertainty") or {}).get("sentences", []):
        console.print(f"- {sentence}")


def _table(title: str, header: list[str], rows: list[list[str]]) -> Any:
    """One rich table; a word still too long for its column is folded onto the next line,
    never cut with "…" (a cut number or name reads as another one)."""
    from rich.table import Table

    table = Table(title=title)
    for i, name in enumerate(header):
        table.add_column(name, justify="left" if i == 0 else "right", overflow="fold")
    for cells in rows:
        table.add_row(*cells)
    return table


def _hyphens(text: str) -> str:
    """`text` with a line break allowed after each hyphen inside a word."""
    return re.sub(r"(?<=\w)-(?=\w)", "-\n", text)
