"""What `ebrm overopt` writes: the summary, the curves and one figure per regime.

`overopt_summary.json`: per regime and proxy, the KL-regularised curve's
{"gold_peak", "kl_at_peak", "gold_at_max_kl", "drop_from_peak", "drop_from_peak_se"}
(the proxy-optimal policy; best-of-n and policy-gradient summaries beside it), and the
paired differences of every proxy minus the base proxy at the largest matched KL. The
embedding-space regimes (`ascent.py`) have the same keys with the angle budget in place of
the KL.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from ebrm._io import atomic_write, atomic_write_json, json_finite
from ebrm.overopt.curves import Curve
from ebrm.overopt.prompt_stats import paired

SUMMARY_FILE = "overopt_summary.json"
CURVES_FILE = "overopt_curves.json"
KINDS = ("kl_regularised", "best_of_n", "policy_gradient")
ASCENT = "embedding_ascent"  # the policy of the embedding-space regimes
_COLORS = {"base": "tab:blue", "refined": "tab:orange", "conservative": "tab:green", "gold": "0.5"}


def over_optimised(s: dict) -> bool:
    """Gold first rises (an interior peak above the start), then falls by > 2 s.e."""
    rises = s["kl_at_peak"] > 0 and s["gold_peak"] > s["gold_start"]
    return rises and s["drop_from_peak"] > 2 * s["drop_from_peak_se"]


def regime_summary(
    curves: Mapping[str, Mapping[str, Curve]], *, label_noise: float, accuracy_on_pool_pairs: dict
) -> dict:
    """Summary of one pool regime: every proxy's curves and the paired differences to base."""
    proxies = {}
    for name, kinds in curves.items():
        s = kinds["kl_regularised"].summary()
        proxies[name] = {
            **s,
            "over_optimised": over_optimised(s),
            "best_of_n": kinds["best_of_n"].summary(),
            "policy_gradient": kinds["policy_gradient"].summary(),
        }
    base = curves["base"]
    differences = {}
    for name, kinds in curves.items():
        if name in ("base", "gold"):
            continue
        diff = {}
        for kind in ("kl_regularised", "best_of_n"):  # matched KL at every point
            a, b = kinds[kind], base[kind]
            diff[kind] = {"kl": float(a.kl[-1]), **paired(a.gold[:, -1], b.gold[:, -1])}
        differences[f"{name}_minus_base"] = diff
    return {
        "label_noise": label_noise,
        "policy": "kl_regularised",
        "accuracy_on_pool_pairs": accuracy_on_pool_pairs,
        "proxies": proxies,
        "paired_at_max_kl": differences,
    }


def ascent_summary(curves: Mapping[str, Curve], *, label_noise: float, info: dict) -> dict:
    """Summary of one embedding-space regime (`ascent.py`): the same keys as a pool regime,
    with the angle budget [rad] in place of the KL ("kl_at_peak" is the budget at the peak,
    "paired_at_max_kl" the differences at the largest budget)."""
    proxies = {}
    for name, curve in curves.items():
        s = curve.summary()
        proxies[name] = {**s, "over_optimised": over_optimised(s)}
    base = curves["base"]
    differences = {
        f"{name}_minus_base": {
            ASCENT: {"kl": float(curve.kl[-1]), **paired(curve.gold[:, -1], base.gold[:, -1])}
        }
        for name, curve in curves.items()
        if name not in ("base", "gold")
    }
    return {
        "label_noise": label_noise,
        "policy": ASCENT,
        "budget": "angle [rad] between the embedding and the real response's embedding",
        **info,
        "proxies": proxies,
        "paired_at_max_kl": differences,
    }


def plot_regime(curves: Mapping[str, Mapping[str, Curve]], path: Path, *, title: str) -> None:
    """Gold vs KL (KL-regularised), vs n (best-of-n), vs KL (policy gradient), ±1 s.e."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(15, 4.5))
    axes = dict(zip(KINDS, fig.subplots(1, 3), strict=True))
    for i, (name, kinds) in enumerate(curves.items()):
        color = _COLORS.get(name, f"C{i + 3}")
        for kind, ax in axes.items():
            points = kinds[kind].points()
            x = [p["n"] for p in points] if kind == "best_of_n" else [p["kl"] for p in points]
            y = [p["gold"] for p in points]
            se = [p["gold_se"] for p in points]
            ls = ":" if name == "gold" else "-"
            ax.plot(x, y, ls, color=color, label="gold (oracle)" if name == "gold" else name)
            low = [a - b for a, b in zip(y, se, strict=True)]
            high = [a + b for a, b in zip(y, se, strict=True)]
            ax.fill_between(x, low, high, color=color, alpha=0.12)
    axes["kl_regularised"].set(xlabel="KL(pi || pi0) [nats]", ylabel="gold reward",
                               title="KL-regularised optimum (matched KL)")  # fmt: skip
    axes["best_of_n"].set_xscale("log", base=2)
    axes["best_of_n"].set(xlabel="n", title="best-of-n (exact estimator)")
    axes["policy_gradient"].set(xlabel="KL(pi || pi0) [nats]", title="policy gradient (steps)")
    axes["kl_regularised"].legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=110, format="png"))


def plot_ascent(curves: Mapping[str, Curve], path: Path, *, title: str) -> None:
    """Gold vs the angle budget of the embedding-space policy, ±1 s.e. over prompts."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4.5))
    ax = fig.subplots()
    for i, (name, curve) in enumerate(curves.items()):
        color = _COLORS.get(name, f"C{i + 3}")
        points = curve.points()
        x = [p["kl"] for p in points]
        y = [p["gold"] for p in points]
        se = [p["gold_se"] for p in points]
        ax.plot(x, y, ":" if name == "gold" else "-", color=color,
                label="gold (oracle)" if name == "gold" else name)  # fmt: skip
        low = [a - b for a, b in zip(y, se, strict=True)]
        high = [a + b for a, b in zip(y, se, strict=True)]
        ax.fill_between(x, low, high, color=color, alpha=0.12)
    ax.set(xlabel="angle budget from the real response's embedding [rad]", ylabel="gold reward",
           title="embedding-space ascent on each proxy")  # fmt: skip
    ax.legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=110, format="png"))


def write_outputs(out: Path, regimes: Mapping[str, tuple[dict, dict]], info: dict) -> dict:
    """Write the summary, the curves and the figures; returns the summary."""
    out.mkdir(parents=True, exist_ok=True)
    summary = {**info, "regimes": {name: s for name, (s, _) in regimes.items()}, "figures": {}}
    points = {}
    for name, (s, curves) in regimes.items():
        figure = out / f"overopt-{name}.png"
        title = f"{info.get('data', '')}: regime {name} (proxy label noise {s['label_noise']:.0%})"
        if s.get("policy") == ASCENT:
            plot_ascent(curves, figure, title=title)
            points[name] = {p: c.points() for p, c in curves.items()}
        else:
            plot_regime(curves, figure, title=title)
            points[name] = {
                p: {k: c.points() for k, c in kinds.items()} for p, kinds in curves.items()
            }
        summary["figures"][name] = figure.name
    atomic_write_json(out / CURVES_FILE, json_finite(points))
    atomic_write_json(out / SUMMARY_FILE, json_finite(summary))
    return summary
