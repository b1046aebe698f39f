"""The training history: `history.json` and a plot of loss and validation accuracy."""

from __future__ import annotations

from pathlib import Path

from ebrm._io import atomic_write, atomic_write_json

HISTORY_NAME = "history.json"
CURVE_NAME = "training_curve.png"


def history_figure(
    history: list[dict],
    *,
    chosen_step: int | None = None,
    train_pairs: int | None = None,
    validation_pairs: int | None = None,
):
    """Training loss and validation pairwise accuracy against the step, the chosen checkpoint
    marked on both panels (a vertical line and, on the accuracy, a star with its value).

    Uses a bare `Figure` (rendered by Agg), not pyplot: no global backend state, no display.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    steps = [h["step"] for h in history]
    fig = Figure(figsize=(9, 3.6), layout="constrained")
    FigureCanvasAgg(fig)
    ax_loss, ax_acc = fig.subplots(1, 2)
    ax_loss.plot(steps, [h["train_loss"] for h in history], marker=".")
    sizes = f"n = {train_pairs} pairs" if train_pairs is not None else ""
    ax_loss.set(xlabel="optimiser step", ylabel="training loss", title=f"loss ({sizes or 'train'})")
    for key, label in (("val_accuracy_mean", "refined (mean)"), ("val_accuracy_mode", "mode")):
        values = [h.get(key) for h in history]
        if any(v is not None for v in values):
            ax_acc.plot(steps, values, marker=".", label=label)
    if history and history[0].get("val_accuracy_base") is not None:
        ax_acc.axhline(history[0]["val_accuracy_base"], color="grey", ls="--", label="base")
    at = next((h for h in history if h["step"] == chosen_step), None)
    if at is not None:
        for ax in (ax_loss, ax_acc):
            ax.axvline(chosen_step, color="black", lw=0.8, ls=":")
        value = at.get("val_accuracy_mean")
        if value is not None:
            label = f"chosen: step {chosen_step}, {value:.3f}"
            ax_acc.plot([chosen_step], [value], "k*", markersize=12, label=label)
    val = f"n = {validation_pairs} pairs" if validation_pairs is not None else "held out"
    ax_acc.set(xlabel="optimiser step", ylabel="pairwise accuracy", title=f"validation ({val})")
    ax_acc.legend(loc="lower right", fontsize=8)
    return fig


def plot_history(history: list[dict], path: str | Path, **marks) -> None:
    """Write `history_figure(history, **marks)` as a PNG."""
    fig = history_figure(history, **marks)
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=100))


def save_history(history: list[dict], out_dir: str | Path, **marks) -> None:
    """Write `history.json` and `training_curve.png` into `out_dir` (created if missing);
    `marks`: `history_figure`'s chosen_step, train_pairs, validation_pairs."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out_dir / HISTORY_NAME, history)
    plot_history(history, out_dir / CURVE_NAME, **marks)
