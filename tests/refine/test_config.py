"""RefineConfig: validation messages, the grid, round trips."""

from __future__ import annotations

import logging

import pytest
import torch

from ebrm.errors import ConfigError, DataFormatError
from ebrm.refine.config import RefineConfig


def test_round_trip_and_unknown_keys(caplog):
    cfg = RefineConfig(method="conservative", conservative_k=2.0, grid_min=-3.5, grid_max=9.25)
    assert RefineConfig.from_dict(cfg.to_dict()) == cfg
    with caplog.at_level(logging.WARNING):
        again = RefineConfig.from_dict({**cfg.to_dict(), "from_the_future": 1})
    assert again == cfg
    assert "from_the_future" in caplog.text


def test_grid_is_evenly_spaced():
    grid = RefineConfig(grid_min=-2.0, grid_max=2.0, grid_size=5).grid()
    assert torch.equal(grid, torch.tensor([-2.0, -1.0, 0.0, 1.0, 2.0]))


def test_for_rewards_covers_the_range_with_a_margin():
    y = torch.tensor([-3.0, 1.0, 5.0])
    cfg = RefineConfig.for_rewards(y, margin=2.0, method="mode")
    assert (cfg.grid_min, cfg.grid_max, cfg.method) == (-5.0, 7.0, "mode")
    default = RefineConfig.for_rewards(y)
    std = float(y.double().std(unbiased=False))
    assert default.grid_min == pytest.approx(-3.0 - std)
    assert default.grid_max == pytest.approx(5.0 + std)
    with pytest.raises(DataFormatError, match="finite"):
        RefineConfig.for_rewards(torch.tensor([1.0, float("nan")]))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"method": "best"}, "'method' parameter of RefineConfig must be one of"),
        ({"grid_size": 2}, "'grid_size' parameter .* >= 3"),
        ({"row_chunk": 0}, "'row_chunk' parameter of RefineConfig must be an int >= 1. Got 0"),
        ({"grid_min": 1.0, "grid_max": 1.0}, r"'grid_max' parameter .* > grid_min \(1.0\)"),
        ({"grid_max": float("inf")}, "'grid_max' parameter of RefineConfig must be a finite"),
        ({"grid_size": 2}, "Got 2 instead. Posterior statistics need a grid."),
        ({"zoom_levels": 1.5}, "'zoom_levels' parameter of RefineConfig must be an int >= 0"),
        ({"paper_decay": 1.0}, "'paper_decay' parameter .* in \\(0, 1\\)"),
        ({"polish_steps": -1}, "'polish_steps' parameter .* >= 0"),
    ],
)
def test_invalid_values_are_explained(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        RefineConfig(**kwargs)
