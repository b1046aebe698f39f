"""Load preference pairs and RM-Bench items from any supported `SPEC` (DESIGN §3).

`SPEC` is a local file, a directory (every supported file directly inside it, sorted by name)
or ``hf:NAME[:CONFIG][:SPLIT]``. The row layout is detected per row (see `ebrm.data.formats`);
one file must use one layout, different files of a directory may differ.

RM-Bench files also load with `load_pairs`: each prompt gives 9 pairs, chosen[i] vs
rejected[j] for the three styles, with ``subset`` set to the RM-Bench sub-domain and the style
indices in ``meta``. Use `load_rmbench` to keep the 3x3 structure for RM-Bench scoring.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ebrm._text import plural
from ebrm.data import _fields as F
from ebrm.data import formats
from ebrm.data._read import RawRow, iter_file_rows, list_data_files
from ebrm.data.hub import PREFIX, iter_hub_rows
from ebrm.data.rewardbench2 import parse_rewardbench2
from ebrm.data.types import PreferencePair, RewardBench2Item, RMBenchItem
from ebrm.errors import ConfigError, DataFormatError

logger = logging.getLogger(__name__)


@dataclass
class LoadReport:
    """What `load_pairs` read: counts for logs and for the user."""

    spec: str  # the SPEC given
    sources: list[str] = field(default_factory=list)  # files (or the hub dataset) read
    rows: int = 0  # rows read (an RM-Bench row gives 9 pairs)
    pairs: int = 0  # pairs returned
    layouts: Counter = field(default_factory=Counter)  # rows per detected layout
    prompt_mismatch: int = 0  # pairs whose chosen/rejected conversations differ before the response
    empty_responses: int = 0  # pairs with an empty (whitespace-only) chosen or rejected response

    def summary(self) -> str:
        layouts = ", ".join(f"{name}: {n}" for name, n in sorted(self.layouts.items()))
        return (
            f"{plural(self.pairs, 'pair')} from {plural(self.rows, 'row')} of {self.spec} "
            f"({layouts}); {self.prompt_mismatch} with chosen/rejected differing before the "
            f"response, {self.empty_responses} with an empty response"
        )


def _sources(spec: str) -> Iterator[tuple[str, Iterator[RawRow]]]:
    if spec.startswith(PREFIX):
        yield spec, iter_hub_rows(spec)
        return
    for path in list_data_files(Path(spec).expanduser()):
        yield str(path), iter_file_rows(path)


def _check_limit(limit: int | None) -> None:
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ConfigError(f"limit must be None or an int >= 1. Got {limit!r} instead.")


def _layout_of(row: RawRow, first: tuple[str, str] | None) -> str:
    """The layout of `row`, checked against the first row of its source."""
    layout = formats.detect_layout(row.data)
    if first is None:
        if layout is None:
            raise formats.unknown_layout_error(row.location, row.data)
        return layout
    first_layout, first_location = first
    if layout is not None and layout != first_layout:
        raise DataFormatError(
            f"{row.location}: the row layout changes from {first_layout} (first row, "
            f"{first_location}) to {layout}; found {F.describe_fields(row.data)}. "
            "One file must use one layout; split it into one file per layout."
        )
    if not isinstance(row.data, dict):
        raise formats.unknown_layout_error(row.location, row.data)
    # layout None here: parse with the file's layout so the error names the bad field
    return first_layout


def _iter_items(
    spec: str,
) -> Iterator[tuple[str, str, PreferencePair | RMBenchItem | RewardBench2Item]]:
    """Yield (source, layout, parsed row) for every row of `spec`."""
    for source, rows in _sources(spec):
        first: tuple[str, str] | None = None
        for row in rows:
            layout = _layout_of(row, first)
            first = first or (layout, row.location)
            if layout == "rm-bench":
                item = formats.parse_rmbench(row.data, row.location, row.default_id, source)
            elif layout == "reward-bench-2":
                item = parse_rewardbench2(row.data, row.location, row.default_id)
            else:
                item = formats.PAIR_PARSERS[layout](row.data, row.location, row.default_id)
            yield source, layout, item


def load_pairs_with_report(
    spec: str, *, limit: int | None = None
) -> tuple[list[PreferencePair], LoadReport]:
    """`load_pairs`, also returning a `LoadReport` with counts."""
    _check_limit(limit)
    report = LoadReport(spec=spec)
    pairs: list[PreferencePair] = []
    for source, layout, item in _iter_items(str(spec)):
        if not report.sources or report.sources[-1] != source:
            report.sources.append(source)
        report.rows += 1
        report.layouts[layout] += 1
        if isinstance(item, RewardBench2Item):
            raise DataFormatError(
                f"{source}: holds RewardBench 2 rows ({formats.LAYOUTS['reward-bench-2']}), "
                "not preference pairs; evaluate them with --benchmark reward-bench-2 "
                "(ebrm.data.load_rewardbench2)."
            )
        new = formats.rmbench_pairs(item) if isinstance(item, RMBenchItem) else [item]
        for pair in new[: None if limit is None else limit - len(pairs)]:
            report.prompt_mismatch += bool(pair.meta.get("prompt_mismatch"))
            report.empty_responses += not (
                pair.chosen.response.strip() and pair.rejected.response.strip()
            )
            pairs.append(pair)
        if limit is not None and len(pairs) >= limit:
            break
    report.pairs = len(pairs)
    return pairs, report


def load_pairs(spec: str, *, limit: int | None = None) -> list[PreferencePair]:
    """Load preference pairs from a file, directory or ``hf:`` dataset.

    Pairs whose chosen and rejected conversations differ before the response (a few HH-RLHF
    pairs) are kept, with ``pair.meta["prompt_mismatch"] = True``, and counted in a warning;
    use `load_pairs_with_report` to get the counts as values.

    Args:
        spec: file, directory or ``hf:NAME[:CONFIG][:SPLIT]``.
        limit: return at most this many pairs (reading stops early).

    Returns:
        The pairs in file order (files of a directory sorted by name).

    Raises:
        DataFormatError: unreadable file, unknown or mixed layout, bad field (names file,
            row and field).
        EbrmError: an ``hf:`` dataset that cannot be loaded.

    Example:
        >>> pairs = load_pairs("../shared/data/hh-rlhf-harmless/pairs.jsonl.gz")  # doctest: +SKIP
    """
    pairs, report = load_pairs_with_report(spec, limit=limit)
    logger.info("%s", report.summary())
    if report.prompt_mismatch:
        logger.warning(
            "%d of %s in %s %s chosen/rejected conversations that differ before the "
            "response; each side keeps its own turns (pair.meta['prompt_mismatch'] is True).",
            report.prompt_mismatch,
            plural(report.pairs, "pair"),
            spec,
            "has" if report.prompt_mismatch == 1 else "have",
        )
    if report.empty_responses:
        n = report.empty_responses
        logger.warning(
            "%s in %s %s an empty response.", plural(n, "pair"), spec, "has" if n == 1 else "have"
        )
    return pairs


def load_rmbench(spec: str, *, limit: int | None = None) -> list[RMBenchItem]:
    """Load RM-Bench rows (one item per prompt, 3 chosen and 3 rejected responses).

    The domain comes from the row's "domain" field, an RM-Bench sub-domain "subset", the file
    name (e.g. ``safety-response_filtered.json``) or the source subset name; safety-refuse
    and safety-response are pooled into domain "safety" (``item.subset`` keeps which).

    Args:
        spec: file, directory or ``hf:`` dataset of RM-Bench rows.
        limit: return at most this many items.

    Raises:
        DataFormatError: rows that are not RM-Bench rows, or bad fields.
    """
    _check_limit(limit)
    items: list[RMBenchItem] = []
    for source, layout, item in _iter_items(str(spec)):
        if layout != "rm-bench":
            raise DataFormatError(
                f"{source}: holds {layout} rows, not RM-Bench rows ({formats.LAYOUTS['rm-bench']})."
                " Load preference pairs with load_pairs / --benchmark pairwise instead."
            )
        items.append(item)
        if limit is not None and len(items) >= limit:
            break
    return items


def load_rewardbench2(spec: str, *, limit: int | None = None) -> list[RewardBench2Item]:
    """Load RewardBench 2 rows (a prompt, its correct and incorrect completions).

    Args:
        spec: file, directory or ``hf:`` dataset (e.g. ``hf:allenai/reward-bench-2::test``).
        limit: return at most this many rows.

    Raises:
        DataFormatError: rows that are not RewardBench 2 rows, or bad fields.
    """
    _check_limit(limit)
    items: list[RewardBench2Item] = []
    for source, layout, item in _iter_items(str(spec)):
        if not isinstance(item, RewardBench2Item):
            raise DataFormatError(
                f"{source}: holds {layout} rows, not RewardBench 2 rows "
                f"({formats.LAYOUTS['reward-bench-2']})."
            )
        items.append(item)
        if limit is not None and len(items) >= limit:
            break
    return items
