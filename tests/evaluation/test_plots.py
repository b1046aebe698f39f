"""The evaluation plots, checked on their matplotlib figures (axes, lines, labels), not pixels."""

from __future__ import annotations

import numpy as np
import pytest

from ebrm.evaluation import plots
from ebrm.evaluation.calibration import reliability


def _sides(seed: int = 0) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    # a Laplace posterior's rewards span ±40 where the others span ±10 (what the issue saw)
    scale = {"base": 3.0, "refined": 2.0, "base-calibrated": 3.0, "laplace": 15.0, "ensemble": 2.5}
    return {
        name: (rng.normal(1.0, s, 50) * 1.0, rng.normal(-1.0, s, 50)) for name, s in scale.items()
    }


def test_reward_distributions_panels_share_axes_in_a_grid_and_say_n_and_split():
    sides = _sides()
    fig = plots.reward_distributions_figure(sides, n=50, split="test split, seed 0")
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert len(visible) == 5
    # a grid (at most 3 across), not a 5-wide strip
    width, height = fig.get_size_inches()
    assert width / height < 3
    assert {ax.get_xlim() for ax in visible} == {visible[0].get_xlim()}
    assert {ax.get_ylim() for ax in visible} == {visible[0].get_ylim()}
    title = fig.get_suptitle()
    assert "n = 50 pairs" in title and "test split, seed 0" in title
    assert "standardised" in fig.get_supxlabel()
    # each panel's legend: the chosen mean in the standardised units, computed here directly
    for ax, (name, (c, r)) in zip(visible, sides.items(), strict=True):
        both = np.concatenate([c, r])
        z = (c.mean() - both.mean()) / both.std()
        texts = [t.get_text() for t in ax.get_legend().get_texts()]
        assert texts[0] == f"chosen (mean {z:+.2f})"
        assert ax.get_title().startswith(name)


def test_reward_distributions_unstandardised_share_the_rewards_own_range():
    sides = _sides()
    fig = plots.reward_distributions_figure(sides, standardise=False)
    lo = min(min(c.min(), r.min()) for c, r in sides.values())
    hi = max(max(c.max(), r.max()) for c, r in sides.values())
    for ax in (a for a in fig.axes if a.get_visible()):
        x0, x1 = ax.get_xlim()
        assert x0 <= lo and x1 >= hi


def _cal(p: np.ndarray, ece: float, temperature: float | None) -> dict:
    return {"reliability": reliability(p), "ece": ece, "temperature": temperature}


def test_reliability_shows_every_reward_counts_and_temperature():
    rng = np.random.default_rng(1)
    p = rng.uniform(0.3, 0.99, 200)
    temps = {"base": 1.0, "refined": 1.7, "base-calibrated": 0.8, "laplace": 2.0, "ensemble": 1.1}
    sides = {name: _cal(p, 0.05, t) for name, t in temps.items()}
    fig = plots.reliability_figure(sides, n=200, split="test split", min_count=10)
    ax, ax_n = fig.axes
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels[0] == "perfect" and len(labels) == 1 + len(temps)
    for name, label in zip(temps, labels[1:], strict=True):
        assert label.startswith(f"{name} (ECE 0.050")
    assert "not temperature-scaled" in labels[1]
    assert "temperature-scaled T=1.70" in labels[2]
    # the bottom panel: one count line per reward, equal to the bins' counts
    counts = reliability(p)["count"]
    assert len(ax_n.get_lines()) == len(temps) + 1  # + the min-count line
    for line in ax_n.get_lines()[: len(temps)]:
        assert list(line.get_ydata()) == counts
    # bins with < 10 points are off the reward's line
    dense = sum(1 for k in counts if k >= 10)
    refined_line = [ln for ln in ax.get_lines() if ln.get_label().startswith("refined")][0]
    assert len(refined_line.get_xdata()) == dense
    assert "n = 200 pairs" in ax.get_title() and "test split" in ax.get_title()


def test_risk_coverage_has_a_title_with_n():
    curves = {"coverage": [0.5, 1.0], "base": [0.2, 0.3], "refined": [0.1, 0.25]}
    fig = plots.risk_coverage_figure(curves, n=90, split="test split, seed 0")
    (ax,) = fig.axes
    assert "n = 90 pairs" in ax.get_title() and "seed 0" in ax.get_title()
    assert [ln.get_label() for ln in ax.get_lines()] == ["base", "refined"]


def test_base_vs_refined_title_says_n():
    fig = plots.base_vs_refined_figure(np.arange(6.0), np.arange(6.0) ** 2, n=3, split="val")
    assert "n = 3 pairs" in fig.axes[0].get_title()


@pytest.mark.parametrize(
    ("name", "expected"),
    [("base", 1.0), ("base-calibrated", 0.8), ("refined", 1.5), ("laplace", 2.0), ("x", None)],
)
def test_temperature_of_a_metrics_object(name, expected):
    metrics = {
        "calibration": {"base": {"temperature": 0.8}, "refined": {"temperature": 1.5},
                        "laplace": {"temperature": 2.0}},
    }  # fmt: skip
    assert plots.temperature_of(metrics, name) == expected
    # without references there is no calibration block: not said rather than guessed
    assert plots.temperature_of({}, "refined") is None


def test_labels_of_keeps_the_tail_of_a_long_data_string():
    data = "x" * 80 + " (test split, seed 3)"
    label = plots.labels_of({"n": 7, "data": data})
    assert label["n"] == 7 and label["split"].endswith("(test split, seed 3)")
    assert len(label["split"]) == 60
