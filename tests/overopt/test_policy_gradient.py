"""The stepwise policy gradient reaches the closed-form KL-regularised optimum."""

from __future__ import annotations

import pytest
import torch

from ebrm.overopt.policies import kl_from_uniform, kl_regularised_policy
from ebrm.overopt.policy_gradient import policy_gradient


def _pool():
    gen = torch.Generator().manual_seed(0)
    return torch.randn(3, 6, generator=gen, dtype=torch.float64)


def test_exact_gradient_converges_to_the_closed_form():
    proxy, beta = _pool(), 0.5
    final = policy_gradient(proxy, beta=beta, steps=3000, exact=True, learning_rate=0.05)[3000]
    assert torch.allclose(final, kl_regularised_policy(proxy, beta), atol=1e-4)


def test_sampled_grpo_gradient_reaches_the_closed_form_on_a_small_pool():
    proxy, beta = _pool(), 0.5
    runs = policy_gradient(proxy, beta=beta, steps=4000, samples=64, learning_rate=0.01,
                           checkpoints=[0, 100], seed=1)  # fmt: skip
    target = kl_regularised_policy(proxy, beta)
    assert torch.allclose(runs[0], torch.full_like(proxy, 1 / 6))  # starts at pi0
    assert (runs[4000] - target).abs().max() < 0.03
    # total variation shrinks as training goes on
    tv = [float((runs[s] - target).abs().sum(-1).mean()) for s in (0, 100, 4000)]
    assert tv[0] > tv[1] > tv[2]


def test_kl_grows_along_the_run_with_a_small_penalty():
    proxy = _pool()
    runs = policy_gradient(proxy, beta=0.01, steps=200, checkpoints=[0, 10, 50], seed=0)
    kls = [float(kl_from_uniform(runs[s]).mean()) for s in (0, 10, 50, 200)]
    assert kls[0] == pytest.approx(0.0, abs=1e-12)
    assert kls == sorted(kls)


def test_bad_options_are_refused():
    with pytest.raises(ValueError, match="beta > 0"):
        policy_gradient(_pool(), beta=0.0, steps=1)
