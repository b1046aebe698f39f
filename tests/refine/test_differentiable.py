"""`differentiable_posterior`: refinement's numbers, with gradients to the embeddings."""

from __future__ import annotations

import torch

from ebrm.refine import grid_posterior
from ebrm.refine.differentiable import differentiable_posterior
from tests.refine.conftest import gaussian_embeddings

FIELDS = ("mean", "std", "spread", "log_z", "mode_score")


def _agree(head, emb, **kwargs) -> None:
    product = grid_posterior(head, emb, **kwargs)
    ours = differentiable_posterior(head, emb, **kwargs)
    for name in FIELDS:
        expected, got = getattr(product, name).double(), getattr(ours, name)
        # f evaluated again, batched differently: float32 rounding of f, nothing more
        assert torch.allclose(got, expected, rtol=0, atol=1e-5), name


def test_it_equals_grid_posterior_on_a_trained_head(trained_head):
    emb = torch.randn(150, 16, generator=torch.Generator().manual_seed(5))
    _agree(trained_head, emb)  # coarse to fine: settled, windowed and full-grid rows
    _agree(trained_head, emb, coarse_to_fine=False, row_chunk=32)
    _agree(trained_head, emb, grid=torch.linspace(-3, 3, 9))  # narrow rows zoomed


def test_gradients_of_a_gaussian_head_are_the_closed_form(gaussian_head):
    # p(y | e) = N(mu, s^2), e = (mu, log s, c): d mean / d mu = 1, d spread / d log s = s,
    # d log Z / d c = 1, d log Z / d log s = 1
    emb = gaussian_embeddings(12, seed=6).requires_grad_(True)
    post = differentiable_posterior(gaussian_head, emb, grid=torch.linspace(-16, 16, 257))
    s = emb[:, 1].detach().exp()
    (d_mean,) = torch.autograd.grad(post.mean.sum(), emb, retain_graph=True)
    (d_spread,) = torch.autograd.grad(post.spread.sum(), emb, retain_graph=True)
    (d_log_z,) = torch.autograd.grad(post.log_z.sum(), emb)
    assert torch.allclose(d_mean[:, 0], torch.ones(12, dtype=torch.float64), atol=1e-6)
    # (up to the quadrature's own error: coarse rows are settled to 2e-4, _adaptive.AGREE)
    assert torch.allclose(d_mean[:, 1:], torch.zeros(12, 2, dtype=torch.float64), atol=1e-4)
    assert torch.allclose(d_spread[:, 1], s, rtol=1e-6)
    assert torch.allclose(d_log_z[:, 1:], torch.ones(12, 2, dtype=torch.float64), atol=1e-4)


def test_gradients_of_a_trained_head_match_finite_differences(trained_head):
    emb = torch.randn(6, 16, generator=torch.Generator().manual_seed(7)).double()
    leaf = emb.clone().requires_grad_(True)
    post = differentiable_posterior(trained_head, leaf)
    reward = post.mean - post.spread
    (grad,) = torch.autograd.grad(reward.sum(), leaf)
    direction = torch.randn(6, 16, generator=torch.Generator().manual_seed(8)).double()
    direction = direction / direction.norm(dim=1, keepdim=True)
    h = 1e-2  # f is float32: a step whose difference stands well above its rounding

    def value(x):
        p = differentiable_posterior(trained_head, x)
        return p.mean - p.spread

    with torch.no_grad():
        numeric = (value(emb + h * direction) - value(emb - h * direction)) / (2 * h)
    assert torch.allclose((grad * direction).sum(1), numeric, rtol=2e-2, atol=2e-3)


def test_empty_input_gives_empty_columns(trained_head):
    post = differentiable_posterior(trained_head, torch.zeros(0, 16))
    assert all(getattr(post, name).shape == (0,) for name in FIELDS)
