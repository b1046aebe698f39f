"""Temperature scaling of P(y_a > y_b) against its definition and a simulated truth."""

import math

import pytest
import torch

from ebrm.errors import ConfigError
from ebrm.refine.calibration import fit_temperature, temperature_scale


def test_temperature_scale_is_sigmoid_of_logit_over_t():
    p = torch.tensor([0.1, 0.5, 0.9, 0.99], dtype=torch.float64)
    for t in (0.5, 1.0, 3.0):
        expected = [1 / (1 + math.exp(-math.log(x / (1 - x)) / t)) for x in p.tolist()]
        assert temperature_scale(p, t).tolist() == pytest.approx(expected, abs=1e-12)
    with pytest.raises(ConfigError):
        temperature_scale(p, 0.0)


def test_fit_temperature_recovers_the_temperature_that_generated_the_outcomes():
    """Reported p = sigmoid(l) while the truth is sigmoid(l / 4): the fit must find T ~ 4."""
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(20000, generator=gen, dtype=torch.float64) * 6
    first_wins = torch.rand(20000, generator=gen, dtype=torch.float64) < torch.sigmoid(logits / 4)
    # present each pair winner-first: P(winner > loser) = sigmoid(+-l)
    p_winner_first = torch.sigmoid(torch.where(first_wins, logits, -logits))
    assert fit_temperature(p_winner_first) == pytest.approx(4.0, rel=0.08)
    assert fit_temperature(torch.zeros(0)) == 1.0


def test_trained_model_p_better_uses_its_fitted_temperature(trained_head):
    from ebrm.energy.normalize import RewardNormalizer
    from ebrm.model import EnergyRewardModel
    from ebrm.refine import RefineConfig, p_better

    emb = torch.randn(
        6, trained_head.config.embedding_dim, generator=torch.Generator().manual_seed(1)
    )
    config = RefineConfig(grid_size=64, p_better_temperature=2.5)
    model = EnergyRewardModel(
        trained_head, RewardNormalizer(scale=4.0).fit(torch.randn(32)), config
    )
    raw = p_better(trained_head, emb[:3], emb[3:], grid=config.grid())
    assert model.p_better(emb[:3], emb[3:]).tolist() == pytest.approx(
        temperature_scale(raw, 2.5).tolist(), abs=1e-6
    )


def test_a_temperature_at_the_edge_of_its_search_range_is_warned_about(caplog):
    # every pair right with P = 0.6: the likelihood keeps rising as T shrinks, so the
    # search stops at its lower bound (the probabilities are underconfident)
    with caplog.at_level("WARNING"):
        assert fit_temperature(torch.full((50,), 0.6), low=0.05) == pytest.approx(0.05)
    assert "lower end of its search range" in caplog.text
    caplog.clear()
    # every pair wrong with P = 0.9 for the loser: flattening as far as allowed is best
    with caplog.at_level("WARNING"):
        assert fit_temperature(torch.full((50,), 0.1), high=200.0) == pytest.approx(200.0)
    assert "upper end of its search range" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING"):  # an interior optimum: no warning
        fit_temperature(torch.tensor([0.9, 0.9, 0.9, 0.1]))
    assert "search range" not in caplog.text
