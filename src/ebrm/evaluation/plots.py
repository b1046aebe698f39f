"""Evaluation plots as PNG files (matplotlib's Agg canvas; pyplot's global state is not used).

Every function takes plain arrays or metrics.json fragments and a target path, writes the
PNG atomically and returns the path.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ebrm._io import atomic_write
from ebrm.evaluation.metrics import as_numpy

_DPI = 110
_CHOSEN, _REJECTED = "#1b9e77", "#d95f02"


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=_DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path: str | Path) -> Path:
    return atomic_write(path, lambda tmp: fig.savefig(tmp, format="png"))


def reward_distributions(
    path: str | Path, sides: Mapping[str, tuple[Any, Any]], *, units: str = "normalised"
) -> Path:
    """Histograms of chosen vs rejected rewards, one panel per side ("base", "refined").

    Args:
        path: PNG to write.
        sides: {name: (chosen rewards, rejected rewards)}.
        units: axis label for the reward units.
    """
    fig = _figure(4.2 * len(sides), 3.2)
    axes = fig.subplots(1, len(sides), squeeze=False)[0]
    for ax, (name, (chosen, rejected)) in zip(axes, sides.items(), strict=True):
        c, r = as_numpy(chosen).ravel(), as_numpy(rejected).ravel()
        both = np.concatenate([c, r])
        bins = np.linspace(both.min(), both.max() + 1e-9, 31)
        ax.hist(c, bins=bins, alpha=0.6, color=_CHOSEN, label=f"chosen (mean {c.mean():.2f})")
        ax.hist(r, bins=bins, alpha=0.6, color=_REJECTED, label=f"rejected (mean {r.mean():.2f})")
        ax.set_title(f"{name} reward")
        ax.set_xlabel(f"reward ({units})")
        ax.set_ylabel("responses")
        ax.legend(fontsize=8)
    return _save(fig, path)


def base_vs_refined(
    path: str | Path, base: Any, refined: Any, *, is_chosen: Any | None = None
) -> Path:
    """Scatter of each response's base reward (x) against its refined reward (y).

    Args:
        path: PNG to write.
        base, refined: (N,) rewards of the same responses, normalised units.
        is_chosen: optional (N,) bool to colour chosen and rejected responses.
    """
    b, r = as_numpy(base).ravel(), as_numpy(refined).ravel()
    fig = _figure(4.4, 4.0)
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
    ax.set_title(f"base vs refined reward (Pearson r = {corr:.3f})")
    ax.set_xlabel("base reward (normalised)")
    ax.set_ylabel("refined reward (normalised)")
    return _save(fig, path)


def rmbench_heatmaps(path: str | Path, sides: Mapping[str, Mapping[str, Any]]) -> Path:
    """RM-Bench mean 3x3 matrices: one row per domain, one column per side.

    Args:
        path: PNG to write.
        sides: {"base": metrics["base"], "refined": metrics["refined"]} of an rm-bench run.
    """
    names = list(sides)
    domains = [d for d, v in sides[names[0]].items() if isinstance(v, Mapping)]
    fig = _figure(3.3 * len(names), 3.0 * len(domains))
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
    return _save(fig, path)


def reliability_diagram(path: str | Path, sides: Mapping[str, Mapping[str, Any]]) -> Path:
    """Reliability diagram of P(chosen > rejected) for each side.

    Args:
        path: PNG to write.
        sides: {name: {"reliability": calibration.reliability(...), "ece": float}}.
    """
    fig = _figure(4.6, 4.2)
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=0.8, label="perfect")
    for (name, cal), marker in zip(sides.items(), "os^", strict=False):
        rel = cal["reliability"]
        pts = [
            (c, a)
            for c, a, n in zip(rel["mean_confidence"], rel["accuracy"], rel["count"], strict=True)
            if n
        ]
        xs, ys = zip(*pts, strict=True) if pts else ((), ())
        ax.plot(xs, ys, marker=marker, label=f"{name} (ECE {cal['ece']:.3f})")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("predicted P(first > second)")
    ax.set_ylabel("observed frequency")
    ax.set_title("reliability (every pair in both orders)")
    ax.legend(fontsize=8)
    return _save(fig, path)


def risk_coverage(path: str | Path, curves: Mapping[str, Any]) -> Path:
    """Risk (error rate of the answered pairs) against coverage, one line per reward.

    Args:
        path: PNG to write.
        curves: {"coverage": [c, ...], <reward>: [risk at each c, ...], ...}.
    """
    fig = _figure(5.0, 3.6)
    ax = fig.subplots()
    coverage = as_numpy(curves["coverage"])
    for name, risk in curves.items():
        if name != "coverage":
            ax.plot(coverage, as_numpy(risk), marker=".", label=name)
    ax.set_xlabel("coverage (share of pairs answered, most confident first)")
    ax.set_ylabel("risk (error rate of answered pairs)")
    ax.set_xlim(0, 1)
    ax.legend(fontsize=8)
    return _save(fig, path)
