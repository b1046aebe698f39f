"""The benchmark interface: one way to load, score, summarise and report every benchmark.

A benchmark turns loaded rows into responses to score and `Units` to compare, computes
metrics for every reward it is given ("base", "refined", and any reference a caller adds)
with a paired difference against "base" for each, and knows how to show them (summary
rows, per-example records, plots). `ebrm.evaluation.registry` maps names to benchmarks;
nothing else looks at a benchmark's name.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

from ebrm.data.types import Conversation
from ebrm.errors import DataFormatError
from ebrm.evaluation.metrics import format_p
from ebrm.evaluation.units import Units, UnitScores

BASE = "base"  # the reward every other one is compared with
REFINED = "refined"  # the reward whose comparison is metrics.json's "delta"

Row = tuple[str, ...]  # one summary table row: metric name, then one cell per column


@runtime_checkable
class Benchmark(Protocol):
    """What every benchmark provides (see `BenchmarkBase` for the shared parts)."""

    name: str  # registry key and metrics.json "benchmark"
    unit: str  # what one unit is, for sentences: "pairs", "prompts", "rows"
    primary_metric: str  # the key of "delta" (and of each side) the verdict is about

    def load(self, spec: str, *, limit: int | None = None) -> list[Any]: ...

    def responses(self, rows: Sequence[Any]) -> tuple[list[Conversation], Units]: ...

    def metrics(
        self, units: Units, scores: Mapping[str, UnitScores], *, n_boot: int, seed: int
    ) -> dict[str, Any]: ...

    def summary_rows(self, metrics: Mapping[str, Any]) -> list[Row]: ...

    def examples(self, units: Units, scores: UnitScores) -> list[dict[str, Any]]: ...

    def plots(
        self, metrics: Mapping[str, Any], out_dir: Path, *, dpi: int | None = None
    ) -> dict[str, Path]: ...


def pct(x: float | None) -> str:
    return "-" if x is None else f"{100.0 * x:.1f}"


def ci_text(ci: Sequence[float] | None) -> str:
    return "-" if not ci else f"[{100.0 * ci[0]:.1f}, {100.0 * ci[1]:.1f}]"


def signed(x: float | None) -> str:
    return "-" if x is None else f"{100.0 * x:+.1f}"


INCOMPLETE = "incomplete: not comparable with published numbers"


def reward_names(metrics: Mapping[str, Any]) -> list[str]:
    """The rewards a metrics object holds, base first (older files: base and refined)."""
    return list(metrics.get("rewards", (BASE, REFINED)))


def summary_header(metrics: Mapping[str, Any]) -> list[str]:
    """Column names of `summary_rows`: metric, each reward, then each "<reward> - base"."""
    names = reward_names(metrics)
    return ["metric", *names, *(f"{n} - {BASE}" for n in names if n != BASE)]


class BenchmarkBase:
    """Shared parts: the metrics object over many rewards and the generic summary rows.

    A subclass gives `side` (one reward's metrics), `paired` (one reward against the base,
    with its verdict) and `side_rows` / `delta_rows`; `top_level` may add keys.
    """

    name: ClassVar[str]
    unit: ClassVar[str] = "pairs"
    primary_metric: ClassVar[str]
    what: ClassVar[str]  # how sentences name the primary metric, e.g. "accuracy"

    def coverage(self, metrics: Mapping[str, Any]) -> tuple[int, int, str] | None:
        """(parts present, parts in the benchmark, what a part is) when the run covered only
        some of the parts its primary metric averages (e.g. 2 of 4 RM-Bench domains), so
        that the number is not the published one; None when complete."""
        return None

    def primary_label(self, metrics: Mapping[str, Any], label: str) -> str:
        """`label` ("overall"), qualified for an incomplete run: "overall over 2 of 4
        domains"."""
        cover = self.coverage(metrics)
        return label if cover is None else f"{label} over {cover[0]} of {cover[1]} {cover[2]}"

    def rows_of(self, rows: Sequence[Any], row_type: type, what: str) -> list:
        """`rows` as a list, refused with one line when any row is not a `row_type`."""
        rows = list(rows)
        bad = next((type(r).__name__ for r in rows if not isinstance(r, row_type)), None)
        if bad is not None:
            raise DataFormatError(f"{self.name} needs {what}; got {bad} rows")
        return rows

    def side(self, units: Units, scores: UnitScores, *, n_boot: int, seed: int) -> dict:
        """One reward's metrics (metrics.json's object for that reward)."""
        raise NotImplementedError

    def paired(
        self,
        units: Units,
        base: UnitScores,
        other: UnitScores,
        *,
        n_boot: int,
        seed: int,
        who: str,
    ) -> dict:
        """`other` minus `base` on the primary metric, paired over units, with a verdict
        sentence about `who`."""
        raise NotImplementedError

    def top_level(
        self, units: Units, scores: Mapping[str, UnitScores], *, n_boot: int, seed: int
    ) -> dict[str, Any]:
        return {}

    def metrics(
        self, units: Units, scores: Mapping[str, UnitScores], *, n_boot: int, seed: int
    ) -> dict[str, Any]:
        """{"benchmark", "n", "rewards", <reward>: side..., "delta" (refined vs base),
        "deltas": {<reward>: paired difference vs base}} plus `top_level`'s keys."""
        if BASE not in scores:
            raise ValueError(f"the rewards must include {BASE!r}; got {list(scores)}")
        opts = {"n_boot": n_boot, "seed": seed}
        names = [BASE, *(n for n in scores if n != BASE)]
        out: dict[str, Any] = {"benchmark": self.name, "n": len(units), "rewards": names}
        for name in names:
            out[name] = self.side(units, scores[name], **opts)
        deltas = {
            name: self.paired(units, scores[BASE], scores[name], who=name, **opts)
            for name in names
            if name != BASE
        }
        if REFINED in deltas:
            out["delta"] = deltas[REFINED]
        out["deltas"] = deltas
        out.update(self.top_level(units, scores, **opts))
        return out

    def summary_rows(self, metrics: Mapping[str, Any]) -> list[Row]:
        """One row per metric: each reward's value, then each one's difference to base."""
        names = reward_names(metrics)
        others = [n for n in names if n != BASE]
        deltas = metrics.get("deltas") or {REFINED: metrics.get("delta", {})}
        rows: list[Row] = []
        for label, key, fmt in self.side_rows(metrics):
            values = [metrics[n] for n in names]
            cells = [fmt(_dig(v, key)) for v in values]
            diffs = []
            for n in others:
                d = self.delta_cell(deltas.get(n, {}), key)
                if d is None:
                    a, b = _dig(metrics[n], key), _dig(metrics[BASE], key)
                    d = "" if not _numeric(a, b) else _diff_text(fmt, a - b)
                diffs.append(d)
            rows.append((label, *cells, *diffs))
        rows += self.delta_rows(metrics, names, deltas)
        return rows

    # hooks of summary_rows ------------------------------------------------------------
    def side_rows(self, metrics: Mapping[str, Any]) -> list[tuple[str, tuple, Any]]:
        """(label, key path into a side, formatter) per row."""
        return []

    def delta_cell(self, delta: Mapping[str, Any], key: tuple) -> str | None:
        """The difference cell for `key` from the paired delta, or None to subtract."""
        return None

    def delta_rows(
        self, metrics: Mapping[str, Any], names: list[str], deltas: Mapping[str, Any]
    ) -> list[Row]:
        return []

    def plots(
        self, metrics: Mapping[str, Any], out_dir: Path, *, dpi: int | None = None
    ) -> dict[str, Path]:
        return {}


def _dig(obj: Any, key: tuple) -> Any:
    for k in key:
        if not isinstance(obj, Mapping) or k not in obj:
            return None
        obj = obj[k]
    return obj


def _numeric(*values: Any) -> bool:
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)


def _diff_text(fmt, d: float) -> str:
    return signed(d) if fmt is pct else f"{d:+.4f}"


def calibration_side_rows() -> list[tuple[str, tuple, Any]]:
    """ECE and Brier rows (4 decimals), for benchmarks with P(chosen > rejected)."""
    return [
        ("ECE (15 bins)", ("ece",), _four),
        ("Brier", ("brier",), _four),
    ]


def _four(x: float | None) -> str:
    return "-" if x is None else f"{x:.4f}"


def mcnemar_rows(names: list[str], deltas: Mapping[str, Any]) -> list[Row]:
    """Pairs fixed / broken and the McNemar p-value of each reward against base."""
    others = [n for n in names if n != BASE]
    if not any("mcnemar_p" in deltas.get(n, {}) for n in others):
        return []
    blanks = [""] * len(names)
    fixed = [
        f"{deltas[n]['improved']} / {deltas[n]['worsened']}" if "improved" in deltas.get(n, {})
        else "" for n in others
    ]  # fmt: skip
    p = [format_p(deltas[n]["mcnemar_p"]) if "mcnemar_p" in deltas.get(n, {}) else ""
         for n in others]  # fmt: skip
    return [("pairs fixed / broken", *blanks, *fixed), ("McNemar p", *blanks, *p)]
