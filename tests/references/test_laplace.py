"""The Laplace reference against a direct computation on a tiny logistic problem."""

import math

import pytest
import torch

from ebrm.references import bt_map
from ebrm.references._pairs import PairRows
from ebrm.references.laplace import LaplaceReference, fit_laplace, probit_probability


def _problem(n=40, dim=3, seed=0):
    gen = torch.Generator().manual_seed(seed)
    emb_c = torch.randn(n, dim, generator=gen, dtype=torch.float64)
    emb_r = torch.randn(n, dim, generator=gen, dtype=torch.float64)
    true_w = torch.tensor([1.5, -1.0, 0.5], dtype=torch.float64)[:dim]
    flip = torch.rand(n, generator=gen, dtype=torch.float64) > torch.sigmoid(
        (emb_c - emb_r) @ true_w
    )
    chosen = torch.where(flip[:, None], emb_r, emb_c)
    rejected = torch.where(flip[:, None], emb_c, emb_r)
    return chosen, rejected


def posterior(diff, center, lam, *, max_full_dim):
    """MAP and Laplace covariance at one precision, from the chunked pieces (3-pair chunks)."""
    pairs = PairRows(diff, chunk_size=3)
    w = bt_map.fit_bt_map(pairs, prior_precision=lam)
    if diff.shape[1] <= max_full_dim:
        cov = torch.linalg.inv(bt_map.data_hessian(pairs, w) + lam * torch.eye(diff.shape[1]))
    else:
        cov = 1.0 / (bt_map.data_hessian(pairs, w[None], diagonal=True)[0] + lam)
    return LaplaceReference(w, center, cov, lam)


def _neg_log_posterior(w, diff, lam):
    # written from the formula: -sum log sigmoid(w . d_i) + lam / 2 |w|^2
    return -torch.nn.functional.logsigmoid(diff @ w).sum() + 0.5 * lam * (w @ w)


def test_map_is_a_stationary_point_and_the_covariance_is_the_inverse_autograd_hessian():
    chosen, rejected = _problem()
    diff = chosen - rejected
    lam = 0.7
    center = torch.cat([chosen, rejected]).mean(0)
    ref = posterior(diff, center, lam, max_full_dim=10)

    w = ref.weight.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(_neg_log_posterior(w, diff, lam), w)
    assert grad.abs().max() < 1e-8

    hess = torch.autograd.functional.hessian(lambda v: _neg_log_posterior(v, diff, lam), ref.weight)
    cov = torch.linalg.solve(hess, torch.eye(3, dtype=torch.float64))
    assert torch.allclose(ref.covariance, cov, atol=1e-10)

    gen = torch.Generator().manual_seed(1)
    emb = torch.randn(5, 3, generator=gen, dtype=torch.float64)
    mean, std = ref.predict(emb)
    for i in range(5):
        x = emb[i] - center
        assert float(mean[i]) == pytest.approx(float(x @ ref.weight), abs=1e-12)
        assert float(std[i]) ** 2 == pytest.approx(float(x @ cov @ x), rel=1e-7)


def test_p_better_is_the_probit_approximation_of_the_pair_difference():
    chosen, rejected = _problem()
    diff = chosen - rejected
    center = torch.cat([chosen, rejected]).mean(0)
    ref = posterior(diff, center, 0.5, max_full_dim=10)
    a, b = chosen[:6], rejected[:6]
    p = ref.p_better(a, b)
    for i in range(6):
        d = a[i] - b[i]
        m, v = float(d @ ref.weight), float(d @ ref.covariance @ d)
        assert float(p[i]) == pytest.approx(1 / (1 + math.exp(-m / math.sqrt(1 + math.pi * v / 8))))
        # and the approximation is close to the integral it stands for (Monte Carlo)
        z = torch.randn(200_000, generator=torch.Generator().manual_seed(i), dtype=torch.float64)
        assert float(p[i]) == pytest.approx(
            float(torch.sigmoid(m + math.sqrt(v) * z).mean()), abs=0.02
        )
    # P(a > b) + P(b > a) = 1
    assert torch.allclose(p + ref.p_better(b, a), torch.ones(6, dtype=torch.float64))


def test_diagonal_form_beyond_max_full_dim_is_the_inverse_hessian_diagonal():
    chosen, rejected = _problem()
    diff = chosen - rejected
    ref = posterior(diff, torch.zeros(3, dtype=torch.float64), 0.7, max_full_dim=2)
    assert ref.diagonal
    hess = torch.autograd.functional.hessian(lambda v: _neg_log_posterior(v, diff, 0.7), ref.weight)
    assert torch.allclose(ref.covariance, 1 / hess.diagonal(), atol=1e-10)
    x = torch.tensor([[1.0, 2.0, -1.0]], dtype=torch.float64)
    _, std = ref.predict(x)
    assert float(std[0]) ** 2 == pytest.approx(float((x[0] ** 2 / hess.diagonal()).sum()))


def test_fit_laplace_picks_the_prior_with_the_lowest_validation_nll():
    chosen, rejected = _problem(n=120)
    ref, report = fit_laplace(chosen[:80], rejected[:80], chosen[80:], rejected[80:])
    best = min(report["tried"], key=lambda t: t["val_nll"])
    assert report["prior_multiple"] == best["prior_multiple"]
    scale = bt_map.data_precision_scale(chosen[:80] - rejected[:80])
    assert ref.prior_precision == pytest.approx(best["prior_multiple"] * scale)
    # the reported NLL is the predictive NLL of the chosen reference
    nll = -torch.log(ref.p_better(chosen[80:], rejected[80:])).mean()
    assert report["val_nll"] == pytest.approx(float(nll))


def test_probit_probability_with_no_variance_is_the_sigmoid():
    m = torch.tensor([-2.0, 0.0, 3.0], dtype=torch.float64)
    assert torch.allclose(
        probit_probability(m, torch.zeros(3, dtype=torch.float64)), torch.sigmoid(m)
    )


def test_fit_bt_map_rejects_a_bad_prior():
    with pytest.raises(ValueError, match="prior_precision"):
        bt_map.fit_bt_map(torch.zeros(2, 2), prior_precision=0.0)
