"""The over-optimisation figure: gold reward vs KL and vs n, one PNG (a bare `Figure`)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from ebrm._io import atomic_write

_COLORS = {"base": "tab:blue", "refined": "tab:orange", "conservative": "tab:green", "gold": "0.5"}


def plot_overopt(curves: Mapping[str, dict], path: str | Path, *, title: str = "") -> None:
    """Gold reward vs KL (best-of-n solid, KL-regularised dashed) and vs n (±1 s.e.).

    Uses a bare `Figure` (rendered by Agg), not pyplot: no global backend state.
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12, 4.5))
    ax_kl, ax_n = fig.subplots(1, 2)
    for i, (name, curve) in enumerate(curves.items()):
        color = _COLORS.get(name, f"C{i + 3}")
        style = {"color": color, "alpha": 0.6 if name == "gold" else 1.0}
        bon, klr = curve["best_of_n"], curve["kl_regularised"]
        label = "gold (oracle)" if name == "gold" else name
        ax_kl.plot([p["kl"] for p in bon], [p["gold"] for p in bon], "-", label=f"{label} BoN",
                   **style)  # fmt: skip
        kls = [p["kl"] for p in klr]
        mean = [p["gold"] for p in klr]
        ax_kl.plot(kls, mean, "--", label=f"{label} KL-reg", **style)
        ax_kl.fill_between(kls, [m - p["gold_se"] for m, p in zip(mean, klr, strict=True)],
                           [m + p["gold_se"] for m, p in zip(mean, klr, strict=True)],
                           color=color, alpha=0.1)  # fmt: skip
        ns = [p["n"] for p in bon]
        mean = [p["gold"] for p in bon]
        ax_n.plot(ns, mean, "-", label=label, **style)
        ax_n.fill_between(ns, [m - p["gold_se"] for m, p in zip(mean, bon, strict=True)],
                          [m + p["gold_se"] for m, p in zip(mean, bon, strict=True)],
                          color=color, alpha=0.15)  # fmt: skip
    ax_kl.set(xlabel="KL(pi || pi0) [nats]", ylabel="gold reward (mean over prompts)",
              title="gold reward vs KL (±1 s.e. over prompts)")  # fmt: skip
    ax_kl.legend(fontsize=7, ncol=2)
    ax_n.set_xscale("log", base=2)
    ax_n.set(xlabel="n (best-of-n)", title="best-of-n: gold reward vs n (±1 s.e. over prompts)")
    ax_n.legend(fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=120, format="png"))
