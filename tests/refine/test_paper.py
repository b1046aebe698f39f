"""Paper-mode refinement: the DESIGN §1.6 algorithm, against a per-sample loop."""

from __future__ import annotations

import pytest
import torch

from ebrm.energy.config import EnergyHeadConfig
from ebrm.energy.head import EnergyHead
from ebrm.errors import ConfigError, DataFormatError
from ebrm.refine import paper_refine, paper_search
from ebrm.refine.paper import hybrid_init
from tests.refine.conftest import synthetic_features


def naive_paper(head, emb, start, *, steps=50, lam0=0.5, eta=0.2, min_step=1e-6):
    """The algorithm written straight from DESIGN §1.6, one sample at a time."""
    out = []
    for i in range(emb.shape[0]):
        e = emb[i : i + 1]
        y, lam = start[i].clone(), lam0

        def f_and_grad(value, e=e):
            value = value.detach().clone().requires_grad_(True)
            score = head(e, value.reshape(1))[0, 0]
            (grad,) = torch.autograd.grad(score, value)
            return score.detach(), grad

        for _ in range(steps):
            if lam < min_step:
                break
            score, grad = f_and_grad(y)
            proposal = y + lam * grad
            new_score, _ = f_and_grad(proposal)
            if new_score > score:
                y = proposal
            else:
                lam *= eta
        out.append(y)
    return torch.stack(out)


@pytest.fixture(scope="module")
def head64() -> EnergyHead:
    torch.manual_seed(0)
    head = EnergyHead(
        EnergyHeadConfig(embedding_dim=8, reward_widths=(4, 8), joint_widths=(16, 8), dropout=0.0)
    )
    # larger weights so f has curvature: steps get rejected and step sizes decay
    with torch.no_grad():
        for p in head.parameters():
            p.mul_(4)
    return head.double().eval()


def test_batched_search_equals_per_sample_loop(head64):
    emb = torch.randn(12, 8, dtype=torch.float64)
    init = 3 * torch.randn(12, dtype=torch.float64)
    start = hybrid_init(init, torch.Generator().manual_seed(5))
    result = paper_search(head64, emb, init, generator=torch.Generator().manual_seed(5))
    expected = naive_paper(head64, emb, start)
    torch.testing.assert_close(result.init.double(), start.float().double())
    torch.testing.assert_close(result.reward.double(), expected, atol=1e-6, rtol=0)
    assert (result.iterations < 50).any()  # some samples stopped on the step-size rule


def test_paper_mode_never_lowers_f(trained_head):
    emb, y = synthetic_features(200, 16, seed=3)
    result = paper_search(trained_head, emb, y)
    assert (result.score >= result.init_score).all()
    with torch.no_grad():
        final = trained_head(emb, result.reward.unsqueeze(1))[:, 0]
        start = trained_head(emb, result.init.unsqueeze(1))[:, 0]
    assert (final >= start - 1e-6).all()  # recomputed independently of the search's cache


def test_hybrid_init_keeps_central_rewards_and_redraws_the_rest():
    init = torch.tensor([-2.0, 0.5, 2.0, -2.01, 7.0, -30.0])
    start = hybrid_init(init, torch.Generator().manual_seed(0))
    assert torch.equal(start[:3], init[:3])
    assert ((start[3:] >= -4) & (start[3:] <= 4)).all()
    again = hybrid_init(init, torch.Generator().manual_seed(0))
    assert torch.equal(start, again)  # seeded


def test_ascent_is_deterministic_and_starts_at_the_base_reward(head64):
    emb = torch.randn(6, 8, dtype=torch.float64)
    init = torch.tensor([-9.0, -3.0, 0.0, 1.0, 5.0, 12.0], dtype=torch.float64)
    original = init.clone()
    a = paper_search(head64, emb, init, hybrid_init=False)
    assert torch.equal(init, original)  # the caller's tensor is not updated in place
    b = paper_search(head64, emb, init, hybrid_init=False, generator=torch.Generator())
    assert torch.equal(a.reward, b.reward)
    assert torch.equal(a.init, init.float())
    expected = naive_paper(head64, emb, init)
    torch.testing.assert_close(a.reward.double(), expected, atol=1e-6, rtol=0)


def test_paper_refine_restores_mode_and_validates():
    head = EnergyHead(EnergyHeadConfig(embedding_dim=4, reward_widths=(4,), joint_widths=(8,)))
    head.train()
    emb = torch.randn(3, 4)
    out = paper_refine(head, emb, torch.zeros(3), steps=3)
    assert out.shape == (3,) and head.training
    with pytest.raises(DataFormatError, match="one initial reward per embedding row"):
        paper_refine(head, emb, torch.zeros(4))
    with pytest.raises(DataFormatError, match="NaN or inf"):
        paper_refine(head, emb, torch.tensor([0.0, float("nan"), 1.0]))
    with pytest.raises(ConfigError, match="0 < decay < 1"):
        paper_refine(head, emb, torch.zeros(3), decay=1.5)
    assert paper_refine(head, torch.zeros(0, 4), torch.zeros(0)).shape == (0,)
