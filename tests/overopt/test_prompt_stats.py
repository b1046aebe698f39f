"""Statistics of the harness: Spearman with ties (hand-worked), paired differences."""

from __future__ import annotations

import math

import pytest
import torch

from ebrm._io import json_finite
from ebrm.overopt.prompt_stats import mean_se, mean_spearman, paired


def test_spearman_uses_average_ranks_for_ties():
    # row 1: gold ranks (1, 2.5, 2.5, 4), proxy ranks (1.5, 1.5, 3, 4):
    #   deviations (-1.5, 0, 0, 1.5) and (-1, -1, 0.5, 1.5): 3.75 / sqrt(4.5 * 4.5) = 5/6
    #   (ranks by argsort would break the ties by position and give 1.0)
    # row 2, no ties: d = (3, -1, -1, -1), 1 - 6 * 12 / (4 * 15) = -0.2
    gold = torch.tensor([[1.0, 2.0, 2.0, 3.0], [4.0, 1.0, 2.0, 3.0]])
    proxy = torch.tensor([[1.0, 1.0, 2.0, 3.0], [1.0, 2.0, 3.0, 4.0]])
    assert mean_spearman(gold[:1], proxy[:1]) == pytest.approx(5 / 6)
    assert mean_spearman(gold[1:], proxy[1:]) == pytest.approx(-0.2)
    assert mean_spearman(gold, proxy) == pytest.approx((5 / 6 - 0.2) / 2)


def test_spearman_leaves_out_constant_rows():
    gold = torch.tensor([[1.0, 2.0, 3.0], [1.0, 1.0, 1.0]])
    proxy = torch.tensor([[3.0, 2.0, 1.0], [1.0, 2.0, 3.0]])
    assert mean_spearman(gold, proxy) == pytest.approx(-1.0)
    assert math.isnan(mean_spearman(gold[1:], proxy[1:]))


def test_mean_se_and_paired_difference():
    a = torch.tensor([1.0, 2.0, 4.0])
    b = torch.tensor([0.0, 1.0, 1.0])
    diff = [1.0, 1.0, 3.0]
    m = sum(diff) / 3
    se = math.sqrt(sum((d - m) ** 2 for d in diff) / 2 / 3)
    assert mean_se(a - b) == pytest.approx((m, se))
    out = paired(a, b)
    assert out["mean"] == pytest.approx(m) and out["se"] == pytest.approx(se)
    assert out["ci95"] == pytest.approx([m - 1.96 * se, m + 1.96 * se])
    assert mean_se(torch.tensor([2.0])) == (2.0, 0.0)


def test_json_finite_replaces_inf_and_nan_everywhere():
    obj = {"a": math.inf, "b": [1.0, math.nan, (2, -math.inf)], "c": {"d": 3.5, "e": "x"}}
    assert json_finite(obj) == {"a": None, "b": [1.0, None, [2, None]],
                                "c": {"d": 3.5, "e": "x"}}  # fmt: skip
