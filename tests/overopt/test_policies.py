"""Policies over the pool: the matched-KL temperature, best-of-n against brute force."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from ebrm.overopt.curves import bon_curve, bon_ns, kl_regularised_curve, kl_targets
from ebrm.overopt.policies import beta_for_kl, bon_kl, kl_from_uniform, kl_regularised_policy


def test_beta_for_kl_hits_the_target_mean_kl():
    gen = torch.Generator().manual_seed(0)
    proxy = torch.randn(4, 50, generator=gen, dtype=torch.float64)
    for target in (0.1, 1.0, 3.0):
        beta = beta_for_kl(proxy, target)
        kl = float(kl_from_uniform(kl_regularised_policy(proxy, beta)).mean())
        assert kl == pytest.approx(target, abs=1e-6)
    assert beta_for_kl(proxy, 0.0) == math.inf


def test_kl_regularised_curve_is_matched_across_proxies_of_any_scale():
    gen = torch.Generator().manual_seed(1)
    gold = torch.randn(5, 40, generator=gen, dtype=torch.float64)
    a = gold + torch.randn(5, 40, generator=gen, dtype=torch.float64)
    b = 100 * torch.randn(5, 40, generator=gen, dtype=torch.float64)
    targets = kl_targets(3.0, 0.5)
    assert targets == [0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0]
    ca, cb = kl_regularised_curve(gold, a, targets), kl_regularised_curve(gold, b, targets)
    assert torch.allclose(ca.kl, torch.tensor(targets, dtype=torch.float64), atol=1e-6)
    assert torch.allclose(ca.kl, cb.kl, atol=1e-6)
    # per prompt, the expected gold under pi ∝ exp(r / beta), written as a loop
    beta = ca.labels["beta"][3]
    for p in range(5):
        w = [math.exp(float(a[p, k]) / beta) for k in range(40)]
        expected = sum(wk * float(gold[p, k]) for k, wk in enumerate(w)) / sum(w)
        assert float(ca.gold[p, 3]) == pytest.approx(expected, rel=1e-9)


def test_exact_best_of_n_against_brute_force_enumeration():
    gen = torch.Generator().manual_seed(2)
    gold, proxy = torch.randn(3, 7, generator=gen), torch.randn(3, 7, generator=gen)
    proxy[1, 2] = proxy[1, 5]  # a tie: the argmax is shared
    ns = [1, 2, 3, 7]
    curve = bon_curve(gold, proxy, ns)
    for j, n in enumerate(ns):
        for p in range(3):
            total = 0.0
            subsets = list(itertools.combinations(range(7), n))
            for s in subsets:
                best = max(float(proxy[p, k]) for k in s)
                winners = [k for k in s if float(proxy[p, k]) == best]
                total += sum(float(gold[p, k]) for k in winners) / len(winners)
            assert float(curve.gold[p, j]) == pytest.approx(total / len(subsets), rel=1e-9)
        assert float(curve.kl[j]) == bon_kl(n)
    # best-of-K of an untied pool is the argmax: exact KL log K (the formula says log K - 1 + 1/K)
    untied = bon_curve(gold, torch.randn(3, 7, generator=gen), [7])
    assert untied.labels["kl_exact"][0] == pytest.approx(math.log(7), abs=1e-9)


def test_bon_ns_doubles_up_to_the_pool_size():
    assert bon_ns(10) == [1, 2, 4, 8, 10]
    assert bon_ns(8) == [1, 2, 4, 8]


def test_vectorised_bon_policy_equals_the_per_row_estimator_with_ties():
    from ebrm.evaluation.best_of_n import best_of_n_weights
    from ebrm.overopt.policies import bon_policy

    gen = torch.Generator().manual_seed(3)
    proxy = torch.randint(0, 4, (6, 9), generator=gen).double()  # many ties
    for n in (1, 2, 5, 9):
        expected = torch.stack([best_of_n_weights(row, n) for row in proxy])
        assert torch.allclose(bon_policy(proxy, n), expected, atol=1e-12)
        assert torch.allclose(bon_policy(proxy, n).sum(-1), torch.ones(6, dtype=torch.float64))
