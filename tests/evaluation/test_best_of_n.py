"""The unbiased best-of-n estimator against brute force over all n-subsets."""

from __future__ import annotations

import itertools
import math
import random

import pytest

from ebrm.evaluation.best_of_n import best_of_n_curve, best_of_n_weights, expected_best_of_n


def brute_force(gold, proxy, n):
    total, count = 0.0, 0
    for subset in itertools.combinations(range(len(gold)), n):
        top = max(proxy[i] for i in subset)
        winners = [i for i in subset if proxy[i] == top]  # ties shared equally
        total += sum(gold[i] for i in winners) / len(winners)
        count += 1
    return total / count


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_brute_force_distinct_scores(seed):
    rng = random.Random(seed)
    m = 9
    gold = [rng.gauss(0, 1) for _ in range(m)]
    proxy = [g + rng.gauss(0, 1) for g in gold]
    for n in range(1, m + 1):
        assert expected_best_of_n(gold, proxy, n) == pytest.approx(brute_force(gold, proxy, n))


def test_matches_brute_force_with_ties():
    rng = random.Random(5)
    m = 10
    gold = [rng.gauss(0, 1) for _ in range(m)]
    proxy = [float(rng.randint(0, 3)) for _ in range(m)]  # many ties
    for n in range(1, m + 1):
        assert expected_best_of_n(gold, proxy, n) == pytest.approx(brute_force(gold, proxy, n))


def test_known_properties():
    gold = [3.0, 1.0, 2.0, 5.0]
    proxy = [0.1, 0.2, 0.3, 0.4]
    assert expected_best_of_n(gold, proxy, 1) == pytest.approx(sum(gold) / 4)  # the mean
    assert expected_best_of_n(gold, proxy, 4) == pytest.approx(5.0)  # the proxy's argmax
    weights = best_of_n_weights(proxy, 2)
    assert float(weights.sum()) == pytest.approx(1.0)
    # large pools stay finite (log-space combinatorics)
    big = [float(i % 97) for i in range(5000)]
    exact = 0.0  # P(max = v) = [C(#<=v, n) - C(#<v, n)] / C(m, n), in exact integers
    for v in range(97):
        le, lt = sum(x <= v for x in big), sum(x < v for x in big)
        exact += v * (math.comb(le, 1000) - math.comb(lt, 1000)) / math.comb(5000, 1000)
    assert expected_best_of_n(big, big, 1000) == pytest.approx(exact, rel=1e-9)
    assert best_of_n_curve(gold, proxy, [1, 4]) == pytest.approx([2.75, 5.0])
    with pytest.raises(ValueError, match="n must be in 1..4"):
        expected_best_of_n(gold, proxy, 5)
    with pytest.raises(ValueError, match="rewards_gold has 4 values but rewards_proxy has 3"):
        expected_best_of_n(gold, proxy[:3], 1)
