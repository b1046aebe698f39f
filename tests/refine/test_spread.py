"""The reported spread belongs to the density, not to the grid (issue 14, item 3)."""

import pytest
import torch

from ebrm.energy.posterior import half_width
from ebrm.refine.grid import grid_posterior
from tests.refine.conftest import GaussianHead, gaussian_embeddings


class FlooredGaussianHead(GaussianHead):
    """The Gaussian head's f with a flat floor: log(exp f + exp(c - 8)).

    Like a trained energy head, whose reward branch saturates far from the training
    rewards, f tends to a constant, so a thin floor of mass lies over the whole grid.
    """

    def forward_projected(self, emb_part, rew_part):
        f = super().forward_projected(emb_part, rew_part)
        return torch.logaddexp(f, emb_part[:, 2:3] - 8.0 + 0 * f)


def _grid(half: float) -> torch.Tensor:
    return torch.linspace(-half, half, int(16 * half) + 1, dtype=torch.float64)  # spacing 1/8


def test_half_width_of_a_gaussian_is_its_std():
    emb = gaussian_embeddings(20, seed=2)
    post = grid_posterior(GaussianHead(), emb, grid=_grid(16))
    s = emb[:, 1].exp().float()
    assert torch.allclose(post.spread, s, rtol=0.01)
    assert torch.allclose(post.std, s, rtol=0.01)  # no floor: std and spread agree


def test_widening_the_grid_leaves_the_spread_unchanged_but_not_the_std():
    head, emb = FlooredGaussianHead(), gaussian_embeddings(20, seed=3)
    narrow = grid_posterior(head, emb, grid=_grid(16))
    wide = grid_posterior(head, emb, grid=_grid(48))  # the same points, three times the range
    assert torch.allclose(narrow.spread, wide.spread, atol=1e-3)  # float32 f, other points
    assert torch.allclose(wide.spread, emb[:, 1].exp().float(), rtol=0.02)
    # the floor's mass grows with the grid, and the std with it
    assert bool((wide.std > 1.5 * narrow.std).all())


def test_widening_the_grid_leaves_a_trained_heads_spread_unchanged(trained_head):
    emb = torch.randn(
        32, trained_head.config.embedding_dim, generator=torch.Generator().manual_seed(4)
    )
    narrow = grid_posterior(trained_head, emb, grid=_grid(16).float())
    wide = grid_posterior(trained_head, emb, grid=_grid(64).float())
    assert torch.allclose(narrow.spread, wide.spread, atol=1e-5)


def test_half_width_against_a_hand_worked_triangle():
    # f = -|y| on a grid with a point at every 0.25: f = -1/2 is crossed at y = +-0.5
    grid = torch.linspace(-2, 2, 17, dtype=torch.float64)
    scores = -grid.abs().unsqueeze(0)
    assert half_width(scores, grid, torch.zeros(1)).item() == pytest.approx(0.5)
    # asymmetric: slope 1 on the left, 1/4 on the right -> crossings at -0.5 and +2.0
    scores = torch.where(grid < 0, grid, -grid / 4).unsqueeze(0)
    assert half_width(scores, grid, torch.zeros(1)).item() == pytest.approx(1.25)
    # never below the level on the right: cut at the grid's end (2.0)
    scores = torch.where(grid < 0, grid, torch.zeros_like(grid)).unsqueeze(0)
    assert half_width(scores, grid, torch.zeros(1)).item() == pytest.approx(1.25)
