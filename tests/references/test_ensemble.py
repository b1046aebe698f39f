"""The bootstrap ensemble against K explicit fits on explicitly resampled data."""

import statistics

import pytest
import torch

from ebrm.references.ensemble import bootstrap_counts, fit_ensemble


def _explicit_fit(diff: torch.Tensor, lam: float) -> torch.Tensor:
    """Plain Newton with autograd derivatives on -sum log sigmoid(w . d) + lam/2 |w|^2,
    over the resampled rows themselves (repeated, not weighted)."""

    def loss(w):
        return -torch.nn.functional.logsigmoid(diff @ w).sum() + 0.5 * lam * (w @ w)

    w = torch.zeros(diff.shape[1], dtype=torch.float64)
    for _ in range(30):
        grad = torch.autograd.functional.jacobian(loss, w)
        w = w - torch.linalg.solve(torch.autograd.functional.hessian(loss, w), grad)
    return w


def test_ensemble_equals_k_explicit_fits_on_bootstrap_resamples():
    gen = torch.Generator().manual_seed(3)
    n, dim, k, lam = 30, 4, 4, 0.9
    chosen = torch.randn(n, dim, generator=gen, dtype=torch.float64) + 0.3
    rejected = torch.randn(n, dim, generator=gen, dtype=torch.float64)
    ref, _ = fit_ensemble(chosen, rejected, size=k, seed=11, prior_precision=lam)

    counts = bootstrap_counts(n, k, 11)
    assert counts.shape == (k, n) and bool((counts.sum(1) == n).all())
    center = torch.cat([chosen, rejected]).mean(0)
    explicit = []
    for member in range(k):
        rows = torch.repeat_interleave(torch.arange(n), counts[member])  # the resample itself
        explicit.append(_explicit_fit(chosen[rows] - rejected[rows], lam))
        assert torch.allclose(ref.weights[member], explicit[-1], atol=1e-6)

    probe = torch.randn(3, dim, generator=gen, dtype=torch.float64)
    mean, std = ref.predict(probe)
    for i in range(3):
        rewards = [float((probe[i] - center) @ w) for w in explicit]
        assert float(mean[i]) == pytest.approx(statistics.mean(rewards), abs=1e-6)
        assert float(std[i]) == pytest.approx(statistics.stdev(rewards), abs=1e-6)
    p = ref.p_better(probe[:2], probe[1:])
    for i in range(2):
        d = probe[i] - probe[i + 1]
        expected = statistics.mean(float(torch.sigmoid(d @ w)) for w in explicit)
        assert float(p[i]) == pytest.approx(expected, abs=1e-6)


def test_bootstrap_counts_are_deterministic_in_the_seed():
    assert torch.equal(bootstrap_counts(50, 3, 7), bootstrap_counts(50, 3, 7))
    assert not torch.equal(bootstrap_counts(50, 3, 7), bootstrap_counts(50, 3, 8))


def test_ensemble_size_is_validated():
    x = torch.zeros(3, 2)
    with pytest.raises(ValueError, match="ensemble size"):
        fit_ensemble(x, x, size=0)
