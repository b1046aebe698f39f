import math

import pytest
import torch

from ebrm.energy.filter import filter_conflicts
from ebrm.energy.normalize import RewardNormalizer
from ebrm.errors import ConfigError, DataFormatError


def test_normalizer_matches_formula_and_round_trips():
    r = torch.tensor([1.0, 2.0, 4.0, 7.0], dtype=torch.float64)
    mean = sum(r.tolist()) / 4
    std = math.sqrt(sum((x - mean) ** 2 for x in r.tolist()) / 4)
    norm = RewardNormalizer(scale=4.0).fit(r)
    expected = [4.0 * (x - mean) / (std + 1e-8) for x in r.tolist()]
    assert norm.transform(r).tolist() == pytest.approx(expected)
    assert norm.inverse_transform(norm.transform(r)).tolist() == pytest.approx(r.tolist())
    again = RewardNormalizer.from_dict(norm.to_dict())
    assert again.transform(r).tolist() == norm.transform(r).tolist()


def test_normalizer_errors():
    with pytest.raises(ConfigError, match="'scale' parameter of RewardNormalizer"):
        RewardNormalizer(scale=0)
    with pytest.raises(DataFormatError, match="NaN or infinite"):
        RewardNormalizer().fit(torch.tensor([1.0, float("nan")]))
    with pytest.raises(DataFormatError, match="zero rewards"):
        RewardNormalizer().fit(torch.tensor([]))
    with pytest.raises(RuntimeError, match="not fitted"):
        RewardNormalizer().transform(torch.zeros(1))


def test_filter_conflicts_counts():
    rc = torch.tensor([1.0, 0.0, 2.0, 3.0, -1.0])
    rr = torch.tensor([0.0, 0.0, 3.0, 1.0, -1.0])
    mask, report = filter_conflicts(rc, rr)
    assert mask.tolist() == [True, False, False, True, False]
    assert (report.total, report.kept, report.dropped, report.ties) == (5, 2, 3, 2)
    assert "kept 2 of 5" in str(report)


def test_filter_rejects_nan():
    with pytest.raises(DataFormatError, match="NaN or inf"):
        filter_conflicts(torch.tensor([float("inf")]), torch.tensor([0.0]))
