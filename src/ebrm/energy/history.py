"""The training history: `history.json` and a plot of loss and validation accuracy."""

from __future__ import annotations

from pathlib import Path

from ebrm._io import atomic_write, atomic_write_json

HISTORY_NAME = "history.json"
CURVE_NAME = "training_curve.png"


def plot_history(history: list[dict], path: str | Path) -> None:
    """Training loss and validation pairwise accuracy against the step (PNG).

    Uses a bare `Figure` (rendered by Agg), not pyplot: no global backend state, no display.
    """
    from matplotlib.figure import Figure

    steps = [h["step"] for h in history]
    fig = Figure(figsize=(9, 3.5))
    ax_loss, ax_acc = fig.subplots(1, 2)
    ax_loss.plot(steps, [h["train_loss"] for h in history], marker=".")
    ax_loss.set(xlabel="optimiser step", ylabel="training loss", title="loss")
    for key, label in (("val_accuracy_mean", "refined (mean)"), ("val_accuracy_mode", "mode")):
        values = [h.get(key) for h in history]
        if any(v is not None for v in values):
            ax_acc.plot(steps, values, marker=".", label=label)
    if history and history[0].get("val_accuracy_base") is not None:
        ax_acc.axhline(history[0]["val_accuracy_base"], color="grey", ls="--", label="base")
    ax_acc.set(xlabel="optimiser step", ylabel="pairwise accuracy", title="validation")
    ax_acc.legend(loc="lower right")
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=100))


def save_history(history: list[dict], out_dir: str | Path) -> None:
    """Write `history.json` and `training_curve.png` into `out_dir` (created if missing)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out_dir / HISTORY_NAME, history)
    plot_history(history, out_dir / CURVE_NAME)
