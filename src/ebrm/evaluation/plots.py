"""Evaluation plots as PNG files (matplotlib's Agg canvas; pyplot's global state is not used).

Every plot has a `*_figure` builder that returns the matplotlib `Figure` (what the tests look
at) and a writer that saves it atomically and returns the path. Every title names what was
evaluated: `n` (how many units) and `split` (which data, e.g. "test split, seed 0").
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ebrm._io import atomic_write
from ebrm.evaluation.metrics import as_numpy

DPI = 110
# Reliability bins with fewer (symmetrised) points than this are drawn grey and left out of
# the line: with 3 points a bin's observed frequency swings between 0 and 1 by chance.
MIN_BIN_COUNT = 10
_CHOSEN, _REJECTED, _SPARSE = "#1b9e77", "#d95f02", "#bbbbbb"
_MARKERS = "os^Dvp*"


def _figure(width: float, height: float, dpi: int = DPI):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=dpi, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path: str | Path) -> Path:
    return atomic_write(path, lambda tmp: fig.savefig(tmp, format="png"))


def caption(n: int | None, split: str | None, *, unit: str = "pairs") -> str:
    """The "(n = 90 pairs, test split)" part of every title ("" when neither is known)."""
    parts = [f"n = {n} {unit}"] if n is not None else []
    parts += [split] if split else []
    return f"({', '.join(parts)})" if parts else ""


def _titled(what: str, n: int | None, split: str | None, unit: str = "pairs") -> str:
    tail = caption(n, split, unit=unit)
    return f"{what}\n{tail}" if tail else what


def labels_of(metrics: Mapping[str, Any], *, width: int = 60) -> dict[str, Any]:
    """{"n", "split"} for the titles of a metrics.json: its unit count and its data string
    (e.g. "LLaMA-Factory dpo_en_demo (300 pairs) (test split, seed 0)"), the data string's
    head cut when longer than `width` (its tail names the split)."""
    data = str(metrics.get("data") or "")
    if len(data) > width:
        data = "..." + data[-(width - 3) :]
    return {"n": metrics.get("n"), "split": data or None}


def temperature_of(metrics: Mapping[str, Any], name: str) -> float | None:
    """The temperature behind reward `name`'s P(chosen > rejected) in a metrics.json: 1.0 for
    the base RM's raw sigmoid, the fitted one for the others (the "calibration" block a model
    with references writes); None where the file does not say."""
    if name == "base":
        return 1.0
    block = metrics.get("calibration") or {}
    source = "base" if name == "base-calibrated" else name
    if isinstance(block.get(source), Mapping) and "temperature" in block[source]:
        return float(block[source]["temperature"])
    return None


def reward_distributions_figure(
    sides: Mapping[str, tuple[Any, Any]],
    *,
    units: str = "normalised",
    standardise: bool = True,
    n: int | None = None,
    split: str | None = None,
    dpi: int = DPI,
):
    """Histograms of chosen vs rejected rewards, one panel per reward, on shared axes.

    Rewards of different kinds have different scales (a Laplace posterior spans ±40 where
    the others span ±10), so by default each reward is standardised by the mean and standard
    deviation of all its responses; the panels then share one x axis and one bin grid, and
    the distance between the chosen and rejected histograms is comparable across panels.
    `standardise=False` shares the axes in the rewards' own units.

    Args:
        sides: {name: (chosen rewards, rejected rewards)}.
        units: the rewards' units (named in each panel's title / the x label).
        standardise: z-score each reward before plotting (see above).
        n, split: what was evaluated, for the title.
    """
    names = list(sides)
    ncols = min(3, len(names))
    nrows = math.ceil(len(names) / ncols)
    fig = _figure(3.3 * ncols, 2.5 * nrows + 0.6, dpi)
    axes = fig.subplots(nrows, ncols, squeeze=False, sharex=True, sharey=True).ravel()
    data = {}
    for name in names:
        c, r = (as_numpy(v).ravel().astype(np.float64) for v in sides[name])
        both = np.concatenate([c, r])
        mean, sd = float(both.mean()), float(both.std())
        if standardise:
            scale = sd if sd > 0 else 1.0
            c, r = (c - mean) / scale, (r - mean) / scale
        data[name] = (c, r, sd)
    pooled = np.concatenate([np.concatenate(v[:2]) for v in data.values()])
    bins = np.linspace(pooled.min(), pooled.max() + 1e-9, 31)
    for ax, name in zip(axes, names, strict=False):
        c, r, sd = data[name]
        ax.hist(c, bins=bins, alpha=0.6, color=_CHOSEN, label=f"chosen (mean {c.mean():+.2f})")
        ax.hist(r, bins=bins, alpha=0.6, color=_REJECTED, label=f"rejected (mean {r.mean():+.2f})")
        ax.set_title(f"{name} (sd {sd:.2f} {units})" if standardise else name, fontsize=9)
        ax.legend(fontsize=7)
    for ax in axes[len(names) :]:
        ax.set_visible(False)
    xlabel = (
        "reward, standardised per reward: (r - mean) / sd" if standardise else f"reward ({units})"
    )
    fig.supxlabel(xlabel, fontsize=9)
    fig.supylabel("responses", fontsize=9)
    fig.suptitle(_titled("Chosen vs rejected rewards", n, split), fontsize=10)
    return fig


def reward_distributions(path: str | Path, sides: Mapping[str, tuple[Any, Any]], **kw) -> Path:
    """Write `reward_distributions_figure(sides, **kw)` as a PNG; returns the path."""
    return _save(reward_distributions_figure(sides, **kw), path)


def base_vs_refined_figure(
    base: Any,
    refined: Any,
    *,
    is_chosen: Any | None = None,
    n: int | None = None,
    split: str | None = None,
    dpi: int = DPI,
):
    """Scatter of each response's base reward (x) against its refined reward (y).

    Args:
        base, refined: (N,) rewards of the same responses, normalised units.
        is_chosen: optional (N,) bool to colour chosen and rejected responses.
        n, split: what was evaluated (n counts pairs), for the title.
    """
    b, r = as_numpy(base).ravel(), as_numpy(refined).ravel()
    fig = _figure(4.4, 4.0, dpi)
    ax = fig.subplots()
    if is_chosen is None:
        ax.scatter(b, r, s=6, alpha=0.5)
    else:
        mask = np.asarray(is_chosen, dtype=bool).ravel()
        ax.scatter(b[mask], r[mask], s=6, alpha=0.5, color=_CHOSEN, label="chosen")
        ax.scatter(b[~mask], r[~mask], s=6, alpha=0.5, color=_REJECTED, label="rejected")
    lo, hi = float(min(b.min(), r.min())), float(max(b.max(), r.max()))
    ax.plot([lo, hi], [lo, hi], color="grey", linewidth=0.8, linestyle="--", label="y = x")
    ax.legend(fontsize=8)
    corr = float(np.corrcoef(b, r)[0, 1]) if b.size > 1 and b.std() > 0 and r.std() > 0 else 0.0
    ax.set_title(_titled(f"base vs refined reward (Pearson r = {corr:.3f})", n, split), fontsize=9)
    ax.set_xlabel("base reward (normalised)")
    ax.set_ylabel("refined reward (normalised)")
    return fig


def base_vs_refined(path: str | Path, base: Any, refined: Any, **kw) -> Path:
    """Write `base_vs_refined_figure(base, refined, **kw)` as a PNG; returns the path."""
    return _save(base_vs_refined_figure(base, refined, **kw), path)


def rmbench_heatmaps(
    path: str | Path,
    sides: Mapping[str, Mapping[str, Any]],
    *,
    n: int | None = None,
    split: str | None = None,
    dpi: int = DPI,
) -> Path:
    """RM-Bench mean 3x3 matrices: one row per domain, one column per side.

    Args:
        path: PNG to write.
        sides: {"base": metrics["base"], "refined": metrics["refined"]} of an rm-bench run.
        n, split: what was evaluated (n counts prompts), for the title.
    """
    names = list(sides)
    domains = [d for d, v in sides[names[0]].items() if isinstance(v, Mapping)]
    fig = _figure(3.3 * len(names), 3.0 * len(domains) + 0.4, dpi)
    axes = fig.subplots(len(domains), len(names), squeeze=False)
    styles = ["concise", "detailed", "markdown"]
    image = None
    for row, dom in enumerate(domains):
        for col, name in enumerate(names):
            ax, entry = axes[row][col], sides[name][dom]
            mat = np.asarray(entry["matrix"], dtype=float)
            image = ax.imshow(mat, vmin=0.0, vmax=1.0, cmap="viridis")
            for i in range(3):
                for j in range(3):
                    shade = "black" if mat[i, j] > 0.6 else "white"
                    ax.text(j, i, f"{mat[i, j]:.2f}", ha="center", va="center", color=shade)
            ax.set_xticks(range(3), styles, fontsize=7)
            ax.set_yticks(range(3), styles, fontsize=7)
            ax.set_xlabel("rejected style")
            ax.set_ylabel("chosen style")
            ax.set_title(
                f"{name} / {dom}: E {entry['easy']:.2f} N {entry['normal']:.2f} "
                f"H {entry['hard']:.2f}",
                fontsize=8,
            )
    if image is not None:
        fig.colorbar(image, ax=axes, shrink=0.6, label="P(chosen > rejected)")
    fig.suptitle(_titled("RM-Bench", n, split, unit="prompts"), fontsize=10)
    return _save(fig, path)


def _temperature_note(temperature: float | None) -> str:
    if temperature is None:
        return ", temperature not recorded"
    if temperature == 1.0:
        return ", not temperature-scaled"
    return f", temperature-scaled T={temperature:.2f}"


def reliability_figure(
    sides: Mapping[str, Mapping[str, Any]],
    *,
    n: int | None = None,
    split: str | None = None,
    min_count: int = MIN_BIN_COUNT,
    dpi: int = DPI,
):
    """Reliability diagram of P(chosen > rejected) for every reward, bin counts below.

    The top panel has one line per reward through the bins holding at least `min_count`
    points (every pair counts twice: in both orders); sparser bins are drawn as grey
    markers off the line. The bottom panel shows each bin's count on the same x axis.

    Args:
        sides: {name: {"reliability": calibration.reliability(...), "ece": float,
            "temperature": optional float (1.0: not scaled; None/absent: not said)}}.
        n, split: what was evaluated (n counts pairs), for the title.
        min_count: bins with fewer points are greyed and left off the line.
    """
    fig = _figure(6.0, 5.6, dpi)
    ax, ax_n = fig.subplots(2, 1, sharex=True, height_ratios=[3, 1.2])
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=0.8, label="perfect")
    for i, (name, cal) in enumerate(sides.items()):
        rel, marker = cal["reliability"], _MARKERS[i % len(_MARKERS)]
        rows = list(zip(rel["mean_confidence"], rel["accuracy"], rel["count"], strict=True))
        dense = [(c, a) for c, a, k in rows if k >= min_count]
        sparse = [(c, a) for c, a, k in rows if 0 < k < min_count]
        xs, ys = zip(*dense, strict=True) if dense else ((), ())
        label = f"{name} (ECE {cal['ece']:.3f}{_temperature_note(cal.get('temperature'))})"
        (line,) = ax.plot(xs, ys, marker=marker, markersize=4, label=label)
        if sparse:
            sx, sy = zip(*sparse, strict=True)
            ax.plot(sx, sy, marker=marker, linestyle="none", color=_SPARSE, markersize=4)
        centres = [(lo + hi) / 2 for lo, hi in zip(rel["bin_lower"], rel["bin_upper"], strict=True)]
        ax_n.plot(centres, rel["count"], drawstyle="steps-mid", color=line.get_color(), lw=1)
    ax_n.axhline(min_count, color=_SPARSE, linestyle=":", linewidth=1)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_ylabel("observed frequency")
    ax.set_title(
        _titled("reliability (every pair in both orders)", n, split)
        + f"\ngrey: bins with < {min_count} points",
        fontsize=8,
    )
    ax.legend(fontsize=7, loc="upper left")
    ax_n.set_xlabel("predicted P(first > second)")
    ax_n.set_ylabel("points per bin", fontsize=8)
    return fig


def reliability_diagram(path: str | Path, sides: Mapping[str, Mapping[str, Any]], **kw) -> Path:
    """Write `reliability_figure(sides, **kw)` as a PNG; returns the path."""
    return _save(reliability_figure(sides, **kw), path)


def risk_coverage_figure(
    curves: Mapping[str, Any], *, n: int | None = None, split: str | None = None, dpi: int = DPI
):
    """Risk (error rate of the answered pairs) against coverage, one line per reward.

    Args:
        curves: {"coverage": [c, ...], <reward>: [risk at each c, ...], ...}.
        n, split: what was evaluated (n counts pairs), for the title.
    """
    fig = _figure(5.0, 3.8, dpi)
    ax = fig.subplots()
    coverage = as_numpy(curves["coverage"])
    for name, risk in curves.items():
        if name != "coverage":
            ax.plot(coverage, as_numpy(risk), marker=".", label=name)
    ax.set_title(_titled("risk-coverage (most confident pairs answered first)", n, split),
                 fontsize=9)  # fmt: skip
    ax.set_xlabel("coverage (share of pairs answered, most confident first)")
    ax.set_ylabel("risk (error rate of answered pairs)")
    ax.set_xlim(0, 1)
    ax.legend(fontsize=8)
    return fig


def risk_coverage(path: str | Path, curves: Mapping[str, Any], **kw) -> Path:
    """Write `risk_coverage_figure(curves, **kw)` as a PNG; returns the path."""
    return _save(risk_coverage_figure(curves, **kw), path)
