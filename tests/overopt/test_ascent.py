"""The embedding-space policy: the projection, the ascent's solutions, and a constructed
gold/proxy pair whose exploit the ascent finds and an uncertainty penalty delays."""

from __future__ import annotations

import math

import torch

from ebrm.overopt.ascent import angle, ascend, ascent_curve, per_prompt, project_to_cap
from ebrm.overopt.report import ascent_summary
from ebrm.overopt.scorers import LinearScorer


def _points(m=50, d=5, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return (torch.randn(m, d, generator=gen, dtype=torch.float64),
            torch.randn(m, d, generator=gen, dtype=torch.float64) * 1.7)  # fmt: skip


def test_projection_lands_on_the_cap_and_is_the_nearest_point_of_it():
    x, x0 = _points()
    budget = 0.4
    y = project_to_cap(x, x0, budget)
    assert torch.allclose(y.norm(dim=1), x0.norm(dim=1), atol=1e-10)
    assert bool((angle(y, x0) <= budget + 1e-9).all())
    # brute force: no sampled point of the cap is nearer to x than the projection
    gen = torch.Generator().manual_seed(1)
    for i in range(5):
        sample = x0[i] + 0.6 * torch.randn(4000, 5, generator=gen, dtype=torch.float64)
        sample = sample / sample.norm(dim=1, keepdim=True) * x0[i].norm()
        cap = sample[angle(sample, x0[i].expand_as(sample)) <= budget]
        assert len(cap) > 100
        assert float((cap - x[i]).norm(dim=1).min()) >= float((y[i] - x[i]).norm()) - 1e-12
    # a point already in the cap (on the sphere) stays where it is
    inside = project_to_cap(x0 * 2.0, x0, budget)
    assert torch.allclose(inside, x0, atol=1e-12)


def test_ascent_on_a_linear_reward_reaches_the_closed_form_maximiser():
    _, x0 = _points(m=20)
    w = torch.tensor([1.0, -2.0, 0.5, 0.0, 3.0], dtype=torch.float64)
    budgets = [0.0, 0.1, 0.3, 0.8, 2.0, 3.0]
    path = ascend(LinearScorer(w), x0, budgets, steps=60)
    u0 = x0 / x0.norm(dim=1, keepdim=True)
    ortho = w - (u0 @ w).unsqueeze(1) * u0  # w's part orthogonal to each x0
    v = ortho / ortho.norm(dim=1, keepdim=True)
    optimum = torch.atan2(ortho.norm(dim=1), u0 @ w)  # angle of w's direction from x0
    for j, budget in enumerate(budgets):
        theta = optimum.clamp(max=budget).unsqueeze(1)
        expected = x0.norm(dim=1, keepdim=True) * (torch.cos(theta) * u0 + torch.sin(theta) * v)
        assert torch.allclose(path[j], expected, atol=1e-4), budget
        assert bool((angle(path[j], x0) <= budget + 1e-9).all())
        assert torch.allclose(path[j].norm(dim=1), x0.norm(dim=1), atol=1e-10)


def test_per_prompt_is_the_mean_over_each_prompts_starts():
    values = torch.tensor([[1.0, 2.0], [3.0, 4.0], [10.0, 20.0]], dtype=torch.float64)
    out = per_prompt(values, torch.tensor([1, 0, 1]), 2)
    assert torch.equal(out, torch.tensor([[3.0, 4.0], [5.5, 11.0]], dtype=torch.float64))


P, D = 80, 6


def _constructed():
    """Gold likes direction a and dislikes extremes along u; the proxy over-rewards u; an
    ensemble disagreeing only about u's coefficient (0, 1, 2) has std |x . u|."""
    gen = torch.Generator().manual_seed(0)
    x0 = torch.randn(2 * P, D, generator=gen, dtype=torch.float64)
    x0 = x0 / x0.norm(dim=1, keepdim=True)
    a, u = torch.eye(D, dtype=torch.float64)[:2]

    def gold(x):
        return x @ a - 2.0 * (x @ u) ** 2

    def base(x):
        return x @ a + x @ u

    def conservative(x):  # mean - 1 std of the ensemble
        members = torch.stack([x @ a + c * (x @ u) for c in (0.0, 1.0, 2.0)])
        return members.mean(0) - members.std(0)

    return x0, torch.arange(2 * P) % P, gold, base, conservative


def test_ascent_overoptimises_the_exploitable_proxy_and_the_penalty_delays_it():
    x0, prompt, gold, base, conservative = _constructed()
    budgets = [round(0.1 * i, 2) for i in range(16)]  # 0 .. 1.5 rad
    curves = {name: ascent_curve(gold, proxy, x0, prompt, budgets, steps=25)
              for name, proxy in {"base": base, "conservative": conservative,
                                  "gold": gold}.items()}  # fmt: skip
    s = ascent_summary(curves, label_noise=0.0, info={})
    b, c = s["proxies"]["base"], s["proxies"]["conservative"]
    assert 0 < b["kl_at_peak"] < b["max_kl"]
    assert b["drop_from_peak"] > 2 * b["drop_from_peak_se"] and b["over_optimised"]
    assert c["kl_at_peak"] > b["kl_at_peak"]
    assert c["gold_at_max_kl"] > b["gold_at_max_kl"]
    assert s["paired_at_max_kl"]["conservative_minus_base"]["embedding_ascent"]["ci95"][0] > 0
    # the proxy's own value never falls as the budget grows (warm starts), gold's own ascent
    # never loses gold
    proxy_means = curves["base"].labels["proxy"]
    assert all(y >= x - 1e-12 for x, y in zip(proxy_means, proxy_means[1:], strict=False))
    g = curves["gold"].gold.mean(0)
    assert bool((g[1:] >= g[:-1] - 1e-12).all())


def test_ascent_summary_matches_an_independent_computation():
    gen = torch.Generator().manual_seed(3)
    x0 = torch.randn(6, 3, generator=gen, dtype=torch.float64)
    prompt = torch.tensor([0, 0, 1, 1, 2, 2])
    w_proxy = torch.tensor([1.0, 1.0, 0.0], dtype=torch.float64)
    w_gold = torch.tensor([1.0, 0.0, 0.5], dtype=torch.float64)
    budgets = [0.0, 0.5, 1.0]
    curve = ascent_curve(LinearScorer(w_gold), LinearScorer(w_proxy), x0, prompt, budgets,
                         steps=60)  # fmt: skip
    # independently: the closed-form maximiser, gold there, averaged per prompt by hand
    table = []
    for i in range(6):
        r, u0 = x0[i].norm(), x0[i] / x0[i].norm()
        ortho = w_proxy - (u0 @ w_proxy) * u0
        v, opt = ortho / ortho.norm(), math.atan2(float(ortho.norm()), float(u0 @ w_proxy))
        table.append([float(r * (math.cos(min(b, opt)) * u0 + math.sin(min(b, opt)) * v)
                            @ w_gold) for b in budgets])  # fmt: skip
    gold = [[(table[2 * p][j] + table[2 * p + 1][j]) / 2 for j in range(3)] for p in range(3)]
    means = [sum(gold[p][j] for p in range(3)) / 3 for j in range(3)]
    peak = max(range(3), key=lambda j: means[j])
    drops = [gold[p][peak] - gold[p][2] for p in range(3)]
    drop = sum(drops) / 3
    se = math.sqrt(sum((d - drop) ** 2 for d in drops) / 2) / math.sqrt(3)
    s = curve.summary()
    assert abs(s["gold_peak"] - means[peak]) < 1e-4
    assert s["kl_at_peak"] == budgets[peak]
    assert abs(s["gold_at_max_kl"] - means[2]) < 1e-4
    assert abs(s["drop_from_peak"] - drop) < 1e-4
    assert abs(s["drop_from_peak_se"] - se) < 1e-4
