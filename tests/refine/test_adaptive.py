"""Coarse-to-fine grid refinement: accuracy against a dense reference, and its cost."""

from __future__ import annotations

import math

import pytest
import torch

from ebrm.energy.config import EnergyHeadConfig
from ebrm.energy.head import EnergyHead
from ebrm.refine import _adaptive, _scoring, grid_posterior
from ebrm.refine import grid as grid_module
from tests.refine.conftest import gaussian_embeddings, synthetic_features, train_tiny_head

REFERENCE = torch.linspace(-16, 16, 4096)


def _reference(head, emb):
    """Every point of a 4,096-point grid (spacing 0.008), no zoom, no shortcuts."""
    return grid_posterior(
        head, emb, grid=REFERENCE, polish_steps=0, zoom_levels=0, coarse_to_fine=False
    )


@pytest.fixture(scope="module")
def sharp_head() -> EnergyHead:
    """Trained with a narrow noise distribution: sharp peaks on a floor of mass."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return train_tiny_head(noise_std=0.5, steps=300, seed=2)
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("which", ["trained_head", "sharp_head"])
def test_mean_and_std_match_a_4096_point_grid_on_trained_heads(which, request):
    head = request.getfixturevalue(which)
    emb, _ = synthetic_features(128, 16, seed=9)
    ref = _reference(head, emb)
    post = grid_posterior(head, emb)  # the default: coarse to fine on RefineConfig().grid()
    assert (post.mean - ref.mean).abs().max() < 1e-3
    assert (post.std - ref.std).abs().max() < 1e-3
    assert (post.log_z - ref.log_z).abs().max() < 1e-3
    # quantiles invert a CDF known at the grid points; the reference's spacing is 0.008
    for name in ("q05", "q50", "q95"):
        assert (getattr(post, name) - getattr(ref, name)).abs().max() < 0.05
    # the polished mode is at least as good as the best of the 4,096 points
    with torch.no_grad():
        dense = head(emb, REFERENCE).max(dim=1).values
    assert (post.mode_score >= dense - 1e-5).all()


def test_gaussian_rows_of_every_width_match_closed_form(gaussian_head):
    emb = gaussian_embeddings(300, seed=8)
    emb[:, 1] = torch.linspace(math.log(0.003), math.log(6.0), 300, dtype=torch.float64)
    mu, s = emb[:, 0], emb[:, 1].exp()
    post = grid_posterior(gaussian_head, emb, grid=torch.linspace(-40, 40, 129))
    torch.testing.assert_close(post.mean.double(), mu, atol=1e-4, rtol=0)
    torch.testing.assert_close(post.std.double(), s, atol=1e-4, rtol=1e-3)
    torch.testing.assert_close(post.mode.double(), mu, atol=1e-4, rtol=0)


class _Counter:
    """Counts (row, point) head evaluations through the inference path."""

    def __init__(self, monkeypatch) -> None:
        self.count = 0
        original = _scoring.joint_scores

        def counted(head, emb_part, reward_part, low=None):
            self.count += emb_part.shape[0] * reward_part.shape[-2]
            return original(head, emb_part, reward_part, low)

        monkeypatch.setattr(_scoring, "joint_scores", counted)
        monkeypatch.setattr(grid_module, "_joint_scores", counted)


def test_fewer_head_evaluations_than_the_shared_grid(monkeypatch, gaussian_head, trained_head):
    counter = _Counter(monkeypatch)
    grid = torch.linspace(-16, 16, 129)
    torch.manual_seed(0)
    untrained = EnergyHead(EnergyHeadConfig(embedding_dim=16)).eval()  # a flat density
    emb, _ = synthetic_features(64, 16, seed=3)
    narrow = gaussian_embeddings(64, seed=4)
    narrow[:, 1] = math.log(0.5)  # std 0.5: needs a finer grid than the coarse one (1.0)
    sharp = narrow.clone()
    sharp[:, 1] = math.log(0.01)  # so narrow that its window needs zooming as well
    per_row = {}
    for name, head, rows in (
        ("untrained", untrained, emb),
        ("narrow", gaussian_head, narrow),
        ("trained", trained_head, emb),
        ("sharp", gaussian_head, sharp),
    ):
        for ctf in (True, False):
            counter.count = 0
            grid_posterior(head, rows, grid=grid, coarse_to_fine=ctf)
            per_row[name, ctf] = counter.count / rows.shape[0]
    coarse = _adaptive.COARSE_CELLS + 1
    assert per_row["untrained", False] >= 129  # the whole grid, plus polish
    assert per_row["untrained", True] <= coarse + 3  # settled on the coarse grid
    assert per_row["narrow", True] <= 2 * coarse + 3  # + a window of 32 points (+ polish)
    # structure everywhere needs the whole grid; zoomed rows the zoom: never more than before
    for name in ("trained", "sharp"):
        assert per_row[name, True] <= per_row[name, False]


def test_end_corrected_weights_integrate_cubics_exactly():
    grid = torch.linspace(-2.0, 3.0, 11, dtype=torch.float64)
    weights = _adaptive.integration_log_weights(grid).exp()
    for coeffs in ((1.0, 0.0, 0.0, 0.0), (0.3, -1.0, 0.5, 0.25)):
        values = sum(c * grid**k for k, c in enumerate(coeffs))
        # the antiderivative at the ends
        exact = sum(
            c * (3.0 ** (k + 1) - (-2.0) ** (k + 1)) / (k + 1) for k, c in enumerate(coeffs)
        )

        assert float((weights * values).sum()) == pytest.approx(exact, abs=1e-12)


def test_window_points_are_new_and_evenly_split_the_window():
    coarse = torch.linspace(-16, 16, _adaptive.COARSE_CELLS + 1)
    first, last = torch.tensor([3, 0, 10]), torch.tensor([6, 32, 12])  # widths 4, 32, 2
    points = _adaptive.window_points(coarse, first, last, _adaptive.COARSE_CELLS)
    merged, _ = _adaptive.merge(
        coarse, torch.zeros(3, coarse.numel()), points, torch.zeros_like(points)
    )
    assert bool((merged[:, 1:] > merged[:, :-1]).all())  # strictly increasing
    for row, (lo, width) in enumerate(((3, 4), (0, 32), (10, 2))):
        inside = merged[row][(merged[row] >= coarse[lo]) & (merged[row] <= coarse[lo + width])]
        gaps = inside[1:] - inside[:-1]
        # width + 1 coarse points and 32 new ones: width + 32 equal gaps over width units
        assert len(inside) == width + 33
        torch.testing.assert_close(gaps, torch.full_like(gaps, width / (width + 32)))
