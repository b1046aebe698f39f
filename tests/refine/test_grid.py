"""Grid refinement against closed-form posteriors, brute force and finite differences."""

from __future__ import annotations

import math

import pytest
import torch

from ebrm.energy.config import EnergyHeadConfig
from ebrm.energy.head import EnergyHead
from ebrm.errors import ConfigError, DataFormatError, IncompatibleArtifactError
from ebrm.refine import grid_posterior, grid_scores, p_better, paper_search, posterior_mean
from ebrm.refine.config import RefineConfig
from tests.refine.conftest import gaussian_embeddings, synthetic_features

GRID = torch.linspace(-16, 16, 257, dtype=torch.float64)  # spacing 0.125
STEP = 32 / 256
NORMAL = torch.distributions.Normal(0.0, 1.0)


def test_gaussian_head_moments_and_log_z_match_closed_form(gaussian_head):
    emb = gaussian_embeddings(200)
    mu, s, c = emb[:, 0], emb[:, 1].exp(), emb[:, 2]
    post = grid_posterior(gaussian_head, emb, grid=GRID)
    # mu in [-5, 5] and s <= 2 leave >= 5.5 s of mass inside [-16, 16], and the trapezoid
    # rule is spectrally accurate for Gaussians with s / step >= 4, so the only error left
    # is the float32 of the returned tensors (relative 6e-8 of values up to ~16).
    torch.testing.assert_close(post.mean.double(), mu, atol=1e-5, rtol=0)
    torch.testing.assert_close(post.std.double(), s, atol=1e-5, rtol=0)
    log_z = c + s.log() + 0.5 * math.log(2 * math.pi)
    torch.testing.assert_close(post.log_z.double(), log_z, atol=1e-5, rtol=0)
    # golden-section search shrinks the bracket [y_k-1, y_k+1] (width 2 * step) by 0.618
    # per step, and the true maximum stays inside it
    bracket = 2 * STEP * ((math.sqrt(5) - 1) / 2) ** RefineConfig().polish_steps
    torch.testing.assert_close(post.mode.double(), mu, atol=bracket, rtol=0)


def test_gaussian_head_quantiles_match_closed_form(gaussian_head):
    emb = gaussian_embeddings(200, seed=1)
    mu, s = emb[:, 0], emb[:, 1].exp()
    post = grid_posterior(gaussian_head, emb, grid=GRID)
    for level, got in ((0.05, post.q05), (0.5, post.q50), (0.95, post.q95)):
        z = NORMAL.icdf(torch.tensor(level)).double()
        expected = mu + s * z
        # The quantile inverts the cumulative trapezoid integral exactly, so its only error
        # is the trapezoid rule's: |CDF error| <= step^2/12 * max|p'| with
        # max|p'| = 1 / (s^2 sqrt(2 pi e)), moved to y by the density p(q) = phi(z) / s.
        max_slope = 1 / (s**2 * math.sqrt(2 * math.pi * math.e))
        density = torch.exp(-0.5 * z**2) / (math.sqrt(2 * math.pi) * s)
        bound = STEP**2 / 12 * max_slope / density
        assert ((got.double() - expected).abs() <= bound + 1e-5).all()


# P(a > b) sums one posterior against the other's trapezoid CDF, whose error is at most
# spacing^2 / 12 * max|p'| = spacing^2 / 12 / (s^2 sqrt(2 pi e)); zooming keeps the spacing
# below s / 2, so the error is below 1 / (48 sqrt(2 pi e)) ~ 0.005 for any widths.
P_BETTER_TOL = 1 / (48 * math.sqrt(2 * math.pi * math.e)) + 1e-4


@pytest.mark.parametrize(("low", "high"), [(0.5, 2.0), (0.002, 0.2), (0.002, 2.0)])
def test_gaussian_head_p_better_matches_closed_form(gaussian_head, low, high):
    g = torch.Generator().manual_seed(1)
    emb_a, emb_b = gaussian_embeddings(100, seed=2), gaussian_embeddings(100, seed=3)
    for emb in (emb_a, emb_b):
        emb[:, 1].uniform_(math.log(low), math.log(high), generator=g)
    s_a, s_b = emb_a[:, 1].exp(), emb_b[:, 1].exp()
    # half the pairs close together (within a standard deviation): the hard case
    emb_b[:50, 0] = emb_a[:50, 0] + 0.5 * (s_a[:50] + s_b[:50]) * torch.randn(
        50, generator=g, dtype=torch.float64
    )
    got = p_better(gaussian_head, emb_a, emb_b, grid=GRID).double()
    expected = NORMAL.cdf((emb_a[:, 0] - emb_b[:, 0]) / (s_a**2 + s_b**2).sqrt())
    assert (got - expected).abs().max() < P_BETTER_TOL
    back = p_better(gaussian_head, emb_b, emb_a, grid=GRID).double()
    torch.testing.assert_close(got + back, torch.ones_like(got), atol=1e-6, rtol=0)


def test_grid_mode_matches_brute_force_dense_argmax(trained_head):
    head = trained_head
    emb, _ = synthetic_features(32, 16, seed=11)
    grid = RefineConfig(grid_min=-12.0, grid_max=12.0, grid_size=128).grid()
    post = grid_posterior(head, emb, grid=grid)
    dense = torch.linspace(-12, 12, 12001)  # spacing 0.002, plain (unfactorised) forward
    with torch.no_grad():
        brute = head(emb, dense)  # (N, 24001)
    best, where = brute.max(dim=1)
    # the polished mode is at least as good as a 12,001-point search up to float32 noise
    assert (post.mode_score >= best - 1e-5).all()
    assert (post.mode - dense[where]).abs().max() < 0.01
    with torch.no_grad():
        check = head(emb, post.mode.unsqueeze(1))[:, 0]
    torch.testing.assert_close(check, post.mode_score, atol=1e-5, rtol=0)


def test_grid_beats_paper_mode_on_trained_and_random_heads(trained_head):
    torch.manual_seed(3)
    random_head = EnergyHead(
        EnergyHeadConfig(embedding_dim=16, reward_widths=(8, 16), joint_widths=(64, 32))
    ).eval()
    emb, y = synthetic_features(256, 16, seed=12)
    grid = torch.linspace(-16, 16, 256)
    for head in (trained_head, random_head):
        post = grid_posterior(head, emb, grid=grid)
        paper = paper_search(head, emb, y)
        inside = (paper.reward >= -16) & (paper.reward <= 16)
        assert inside.float().mean() >= 0.99  # otherwise the comparison says nothing
        # score both results with the same call, so only their positions differ; a
        # shared maximum then ties up to float32 rounding (1e-6 relative, ~8 ulps)
        with torch.no_grad():
            f_grid = head(emb, post.mode.unsqueeze(1))[:, 0]
            f_paper = head(emb, paper.reward.unsqueeze(1))[:, 0]
        wins = f_grid >= f_paper - 1e-6 * f_paper.abs().clamp_min(1)
        assert wins.float().mean() >= 0.99


def test_differentiable_posterior_mean_matches_grid_and_finite_differences():
    torch.manual_seed(0)
    head = EnergyHead(EnergyHeadConfig(embedding_dim=8, reward_widths=(4, 8), joint_widths=(16, 8)))
    head = head.double().eval()
    emb = torch.randn(5, 8, dtype=torch.float64)
    grid = torch.linspace(-6, 6, 97, dtype=torch.float64)
    mean = posterior_mean(head, emb, grid)
    post = grid_posterior(head, emb, grid=grid)
    # grid_posterior integrates with end-corrected trapezoid weights (O(h^4)); this untrained
    # head's density does not decay inside [-6, 6], so the plain trapezoid differs by ~1e-5
    torch.testing.assert_close(mean.float(), post.mean, atol=1e-4, rtol=0)
    # gradient of sum(mean) w.r.t. one weight matrix vs central differences
    weight = head.joint_in_reward.weight
    (grad,) = torch.autograd.grad(mean.sum(), weight)
    eps = 1e-6
    numeric = torch.zeros_like(weight)
    with torch.no_grad():
        for idx in [(0, 0), (3, 5), (15, 7), (7, 2)]:
            old = weight[idx].item()
            weight[idx] = old + eps
            up = posterior_mean(head, emb, grid).sum()
            weight[idx] = old - eps
            down = posterior_mean(head, emb, grid).sum()
            weight[idx] = old
            numeric[idx] = (up - down) / (2 * eps)
            torch.testing.assert_close(grad[idx], numeric[idx], atol=1e-7, rtol=1e-5)
    assert grad.abs().sum() > 0


def test_chunking_does_not_change_results(trained_head):
    emb, _ = synthetic_features(50, 16, seed=4)
    grid = torch.linspace(-10, 10, 101)
    one = grid_posterior(trained_head, emb, grid=grid, row_chunk=64, grid_chunk=512)
    many = grid_posterior(trained_head, emb, grid=grid, row_chunk=7, grid_chunk=13)
    for name in ("mean", "std", "q05", "q50", "q95", "log_z", "mode_score"):
        torch.testing.assert_close(getattr(one, name), getattr(many, name), atol=2e-5, rtol=0)
    scores = grid_scores(trained_head, emb, grid=grid, row_chunk=9, grid_chunk=17)
    with torch.no_grad():
        torch.testing.assert_close(scores, trained_head(emb, grid), atol=1e-5, rtol=0)


def test_grid_posterior_is_deterministic_and_restores_training_mode():
    torch.manual_seed(1)
    head = EnergyHead(EnergyHeadConfig(embedding_dim=6, reward_widths=(4,), joint_widths=(8,)))
    head.train()  # dropout on: grid refinement must switch it off
    emb = torch.randn(10, 6)
    a = grid_posterior(head, emb)
    b = grid_posterior(head, emb)
    assert torch.equal(a.mean, b.mean) and torch.equal(a.mode, b.mode)
    assert head.training


def test_grid_errors():
    head = EnergyHead(EnergyHeadConfig(embedding_dim=6, reward_widths=(4,), joint_widths=(8,)))
    with pytest.raises(IncompatibleArtifactError, match="dimension 5 .* dimension 6"):
        grid_posterior(head, torch.randn(3, 5))
    bad = torch.randn(4, 6)
    bad[2, 1] = float("nan")
    with pytest.raises(DataFormatError, match="first bad row: 2"):
        grid_posterior(head, bad)
    with pytest.raises(ConfigError, match="strictly increasing"):
        grid_posterior(head, torch.randn(3, 6), grid=torch.tensor([0.0, 2.0, 1.0]))
    with pytest.raises(DataFormatError, match="same number of rows"):
        p_better(head, torch.randn(3, 6), torch.randn(4, 6))
    empty = grid_posterior(head, torch.zeros(0, 6))
    assert empty.mean.shape == (0,) and len(empty) == 0


def test_posteriors_narrower_than_the_grid_are_resolved_locally(gaussian_head):
    emb = gaussian_embeddings(100, seed=5)
    emb[:, 1] = torch.linspace(math.log(0.002), math.log(0.2), 100, dtype=torch.float64)
    mu, s = emb[:, 0], emb[:, 1].exp()  # s from 0.002 to 0.2 against a 0.125 grid step
    post = grid_posterior(gaussian_head, emb, grid=GRID)
    # the local grids zoom until the spacing is below s (spacing / s < 1); the trapezoid
    # rule is then accurate to ~exp(-2 pi^2) ~ 3e-9 relative, again float32-limited
    torch.testing.assert_close(post.std.double(), s, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(post.mean.double(), mu, atol=1e-5, rtol=0)
    log_z = emb[:, 2] + s.log() + 0.5 * math.log(2 * math.pi)
    torch.testing.assert_close(post.log_z.double(), log_z, atol=1e-4, rtol=0)
    # quantile error bound as in the quantile test, with the final spacing (< s when zoomed)
    z = float(NORMAL.icdf(torch.tensor(0.95)))
    spacing = torch.where(s < STEP, s, torch.full_like(s, STEP))
    max_slope = 1 / (s**2 * math.sqrt(2 * math.pi * math.e))
    density = math.exp(-0.5 * z**2) / (math.sqrt(2 * math.pi) * s)
    bound = spacing**2 / 12 * max_slope / density
    assert ((post.q95.double() - (mu + z * s)).abs() <= bound + 1e-5).all()
    coarse = grid_posterior(gaussian_head, emb, grid=GRID, zoom_levels=0)
    assert (coarse.std.double() - s).abs().max() > 0.01  # the grid alone cannot do this


def test_inference_path_equals_forward_projected():
    torch.manual_seed(2)
    head = EnergyHead(
        EnergyHeadConfig(embedding_dim=10, reward_widths=(4, 8), joint_widths=(32, 16, 8))
    ).eval()
    emb = torch.randn(6, 10)
    grid = torch.linspace(-5, 5, 21)
    with torch.no_grad():
        reference = head.forward_projected(head.project_embeddings(emb), head.project_rewards(grid))
    assert torch.equal(grid_scores(head, emb, grid=grid), reference)


def test_bfloat16_grid_pass_is_close_and_keeps_the_mode_exact(trained_head):
    emb, _ = synthetic_features(64, 16, seed=6)
    exact = grid_posterior(trained_head, emb)
    fast = grid_posterior(trained_head, emb, compute_dtype="bfloat16")
    # bf16 keeps 8 mantissa bits: f is perturbed by ~1e-2 here, which moves the posterior
    # mean by a similar amount relative to its std (a few units)
    assert (fast.mean - exact.mean).abs().max() < 0.05
    assert (fast.std - exact.std).abs().max() < 0.05
    with torch.no_grad():
        f_at_mode = trained_head(emb, fast.mode.unsqueeze(1))[:, 0]
    torch.testing.assert_close(fast.mode_score, f_at_mode, atol=1e-5, rtol=0)  # fp32 polish
    with pytest.raises(ConfigError, match="'compute_dtype' parameter of RefineConfig"):
        RefineConfig(compute_dtype="float16")
