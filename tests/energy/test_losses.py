"""NCE+ and the BT term against direct loop computations (values and gradients)."""

import math

import torch

from ebrm.energy.config import EnergyHeadConfig
from ebrm.energy.head import EnergyHead
from ebrm.energy.losses import bradley_terry_loss, nce_plus_loss
from ebrm.energy.noise import sample_candidates
from ebrm.energy.objectives import NCEPlus, NCEPlusBT, PairBatch


def _loop_nce_plus(f, y, cands, sigma, reg):
    """Straight from DESIGN §1.5 with python loops and math.exp/log."""
    total, n, sq = 0.0, 0, 0.0
    for i in range(len(y)):
        logits = []
        for m in range(len(cands[i])):
            z = (cands[i][m] - y[i]) / sigma
            log_q = -0.5 * z * z - math.log(sigma) - 0.5 * math.log(2 * math.pi)
            logits.append(f[i][m] - log_q)
            sq += f[i][m] ** 2
            n += 1
        top = max(logits)
        lse = top + math.log(sum(math.exp(v - top) for v in logits))
        total += -logits[0] + lse
    return total / len(y) + reg * sq / n


def test_nce_plus_loss_matches_loop_values_and_gradients():
    g = torch.Generator().manual_seed(0)
    y = torch.randn(3, generator=g, dtype=torch.float64)
    cands, log_q = sample_candidates(
        y, noise_std=1.5, positive_noise_ratio=0.1, num_negatives=4, generator=g
    )
    f = torch.randn(3, 5, generator=g, dtype=torch.float64, requires_grad=True)
    loss = nce_plus_loss(f, log_q, reg_weight=0.05)
    ref = _loop_nce_plus(f.tolist(), y.tolist(), cands.tolist(), 1.5, 0.05)
    assert abs(loss.item() - ref) < 1e-10
    (grad,) = torch.autograd.grad(loss, f)
    # finite-difference gradient of the loop reference
    eps = 1e-6
    for i in range(3):
        for m in range(5):
            fp = f.detach().clone()
            fp[i, m] += eps
            fm = f.detach().clone()
            fm[i, m] -= eps
            num = (
                _loop_nce_plus(fp.tolist(), y.tolist(), cands.tolist(), 1.5, 0.05)
                - _loop_nce_plus(fm.tolist(), y.tolist(), cands.tolist(), 1.5, 0.05)
            ) / (2 * eps)
            assert abs(grad[i, m].item() - num) < 1e-6


def test_candidates_positive_is_tight_and_negatives_spread():
    g = torch.Generator().manual_seed(1)
    y = torch.zeros(4000)
    cands, _ = sample_candidates(
        y, noise_std=2.0, positive_noise_ratio=0.1, num_negatives=3, generator=g
    )
    assert abs(cands[:, 0].std().item() - 0.2) < 0.02
    assert abs(cands[:, 1:].std().item() - 2.0) < 0.05


def _head(dim=5):
    torch.manual_seed(0)
    cfg = EnergyHeadConfig(embedding_dim=dim, reward_widths=(4, 6), joint_widths=(8, 7))
    return EnergyHead(cfg).double().eval()


def _batch(dim=5, n=3, seed=2):
    g = torch.Generator().manual_seed(seed)
    return PairBatch(
        torch.randn(n, dim, generator=g, dtype=torch.float64),
        torch.randn(n, dim, generator=g, dtype=torch.float64),
        torch.randn(n, generator=g, dtype=torch.float64),
        torch.randn(n, generator=g, dtype=torch.float64),
        torch.tensor([True, False, True]),
    )


def test_nce_plus_objective_on_head_matches_loop_with_plain_head_calls():
    head, batch = _head(), _batch()
    obj = NCEPlus(noise_std=1.5, positive_noise_ratio=0.1, num_negatives=4, reg_weight=0.05)
    out = obj(head, batch, generator=torch.Generator().manual_seed(7))
    # same draws, then one head call per (record, candidate)
    emb, y = obj.records(batch)
    cands, _ = sample_candidates(
        y,
        noise_std=1.5,
        positive_noise_ratio=0.1,
        num_negatives=4,
        generator=torch.Generator().manual_seed(7),
    )
    f = [[head(emb[i : i + 1], cands[i, m : m + 1]).item() for m in range(5)] for i in range(4)]
    assert abs(out.loss.item() - _loop_nce_plus(f, y.tolist(), cands.tolist(), 1.5, 0.05)) < 1e-9

    # gradients: autograd through the factorised path vs through per-candidate head calls
    head.zero_grad()
    out.loss.backward()
    fact = [p.grad.clone() for p in head.parameters()]
    head.zero_grad()
    scores = torch.stack(
        [
            torch.stack([head(emb[i : i + 1], cands[i, m : m + 1])[0, 0] for m in range(5)])
            for i in range(4)
        ]
    )
    _, log_q = sample_candidates(
        y,
        noise_std=1.5,
        positive_noise_ratio=0.1,
        num_negatives=4,
        generator=torch.Generator().manual_seed(7),
    )
    nce_plus_loss(scores, log_q, reg_weight=0.05).backward()
    for a, p in zip(fact, head.parameters(), strict=True):
        torch.testing.assert_close(a, p.grad, rtol=1e-9, atol=1e-12)


def test_bt_term_equals_direct_computation():
    head, batch = _head(), _batch()
    grid = torch.linspace(-6, 6, 25, dtype=torch.float64)
    base = NCEPlus(noise_std=1.5, positive_noise_ratio=0.1, num_negatives=4, reg_weight=0.05)
    obj = NCEPlusBT(
        noise_std=1.5,
        positive_noise_ratio=0.1,
        num_negatives=4,
        reg_weight=0.05,
        bt_weight=0.7,
        grid=grid,
    )
    total = obj(head, batch, generator=torch.Generator().manual_seed(3)).loss
    nce = base(head, batch, generator=torch.Generator().manual_seed(3)).loss

    def mean(e):  # E[y|e] = sum w y exp f / sum w exp f, trapezoid w, one point at a time
        w = [
            math.exp(head(e.unsqueeze(0), grid[j : j + 1]).item()) * (0.5 if j in (0, 24) else 1)
            for j in range(len(grid))
        ]
        return sum(wj * yj for wj, yj in zip(w, grid.tolist(), strict=True)) / sum(w)

    bt = 0.0
    for i in range(3):  # every pair, the dropped one (i=1) included
        d = mean(batch.emb_chosen[i]) - mean(batch.emb_rejected[i])
        bt += math.log1p(math.exp(-d))
    assert abs(total.item() - (nce.item() + 0.7 * bt / 3)) < 1e-9
    assert (
        abs(
            bradley_terry_loss(torch.tensor([2.0]), torch.tensor([0.5])).item()
            - math.log1p(math.exp(-1.5))
        )
        < 1e-6
    )
