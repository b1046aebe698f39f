"""Choosing the refined reward and the p_better temperature on validation pairs."""

import pytest
import torch

from ebrm.refine.selection import choose_method


def test_choose_method_switches_only_when_clearly_better():
    chosen, rejected = torch.arange(40), torch.arange(40, 80)
    mean = torch.cat([torch.ones(40), torch.zeros(40)])
    mode = mean.clone()
    mean[:3] = -1.0  # mean wrong on 3 pairs only: not significant
    assert choose_method(mean, mode, chosen, rejected)["method"] == "mean"
    mean[:20] = -1.0  # wrong on 20 pairs where mode is right: p = 2/2**20
    out = choose_method(mean, mode, chosen, rejected)
    assert out["method"] == "mode" and out["mode_vs_mean_p_value"] == pytest.approx(2 / 2**20)


def test_no_validation_pairs_leave_the_config_unchanged():
    from ebrm.energy import EnergyHead, EnergyHeadConfig
    from ebrm.features.table import PairFeatures
    from ebrm.refine import RefineConfig
    from ebrm.refine.selection import select_refinement

    head = EnergyHead(EnergyHeadConfig(embedding_dim=3, reward_widths=(4,), joint_widths=(4,)))
    empty = PairFeatures(torch.zeros(0, 3), torch.zeros(0), torch.zeros(0, dtype=torch.long),
                         torch.zeros(0, dtype=torch.long))  # fmt: skip
    config = RefineConfig(grid_min=-3.0, grid_max=3.0)
    assert select_refinement(head, empty, config) == (config, {})
