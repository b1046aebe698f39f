"""The training curve marks the checkpoint training chose (step and validation accuracy)."""

from __future__ import annotations

from ebrm.energy.history import history_figure


def _history() -> list[dict]:
    acc = [0.55, 0.71, 0.64, 0.69]
    return [
        {"step": 25 * (i + 1), "train_loss": 1.0 / (i + 1), "val_accuracy_mean": a,
         "val_accuracy_mode": a - 0.01, "val_accuracy_base": 0.6}
        for i, a in enumerate(acc)
    ]  # fmt: skip


def test_the_chosen_checkpoint_is_marked_at_its_step_with_its_accuracy():
    history = _history()
    fig = history_figure(history, chosen_step=50, train_pairs=120, validation_pairs=30)
    ax_loss, ax_acc = fig.axes
    star = [ln for ln in ax_acc.get_lines() if ln.get_marker() == "*"]
    assert len(star) == 1
    chosen = next(h for h in history if h["step"] == 50)
    assert list(star[0].get_xdata()) == [50]
    assert list(star[0].get_ydata()) == [chosen["val_accuracy_mean"]]
    assert star[0].get_label() == "chosen: step 50, 0.710"
    # a vertical line at the chosen step on both panels
    for ax in (ax_loss, ax_acc):
        assert any(list(ln.get_xdata()) == [50, 50] for ln in ax.get_lines())
    assert "n = 120 pairs" in ax_loss.get_title()
    assert "n = 30 pairs" in ax_acc.get_title()


def test_without_a_chosen_step_nothing_is_marked():
    fig = history_figure(_history())
    assert not [ln for ln in fig.axes[1].get_lines() if ln.get_marker() == "*"]
