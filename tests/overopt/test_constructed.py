"""A gold/proxy pair with a known exploitable error: the harness sees the hacking, and a
reward that penalises the uncertain direction delays it.

Candidates are Gaussian embeddings. Gold likes direction `a` and dislikes extreme values
along direction `u`; the proxy over-rewards `u` (its coefficient there is wrong). An
ensemble that disagrees only about that coefficient has std proportional to |e . u|, so
the conservative reward mean - k * std is the proxy with the exploit penalised.
"""

from __future__ import annotations

import torch

from ebrm.overopt.curves import bon_curve, bon_ns, kl_regularised_curve, kl_targets
from ebrm.overopt.report import regime_summary

P, K, D = 120, 512, 6


def _constructed(seed=0):
    gen = torch.Generator().manual_seed(seed)
    e = torch.randn(P, K, D, generator=gen, dtype=torch.float64)
    along_a, along_u = e[..., 0], e[..., 1]
    gold = along_a - 0.5 * along_u**2
    members = torch.tensor([0.0, 1.0, 2.0], dtype=torch.float64)  # ensemble's u-coefficient
    scores = along_a[None] + members[:, None, None] * along_u[None]  # (3, P, K)
    mean, std = scores.mean(0), scores.std(0)  # mean = a + u, std = |u|
    return gold, mean, mean - 1.0 * std


def _curves(gold, proxies):
    targets = kl_targets(5.5, 0.25)
    return {
        name: {
            "kl_regularised": kl_regularised_curve(gold, proxy, targets),
            "best_of_n": bon_curve(gold, proxy, bon_ns(K)),
            "policy_gradient": kl_regularised_curve(gold, proxy, targets[:3]),  # not under test
        }
        for name, proxy in proxies.items()
    }


def test_base_proxy_peaks_then_falls_and_the_penalised_reward_delays_it():
    gold, base, conservative = _constructed()
    curves = _curves(gold, {"base": base, "conservative": conservative, "gold": gold})
    s = regime_summary(curves, label_noise=0.0, accuracy_on_pool_pairs={})
    b, c = s["proxies"]["base"], s["proxies"]["conservative"]
    # the base proxy is over-optimised: an interior peak, then a significant fall
    assert 0 < b["kl_at_peak"] < b["max_kl"]
    assert b["drop_from_peak"] > 2 * b["drop_from_peak_se"] and b["over_optimised"]
    assert b["best_of_n"]["drop_from_peak"] > 2 * b["best_of_n"]["drop_from_peak_se"]
    # the uncertainty-penalised reward peaks later and ends higher
    assert c["kl_at_peak"] > b["kl_at_peak"]
    assert c["gold_at_max_kl"] > b["gold_at_max_kl"]
    diff = s["paired_at_max_kl"]["conservative_minus_base"]["kl_regularised"]
    assert diff["ci95"][0] > 0
    # gold optimised directly never falls
    g = [p["gold"] for p in curves["gold"]["kl_regularised"].points()]
    assert all(y >= x - 1e-9 for x, y in zip(g, g[1:], strict=False))


def test_the_fall_and_its_se_are_paired_over_prompts():
    gold, base, _ = _constructed(seed=1)
    curve = kl_regularised_curve(gold, base, kl_targets(5.0, 0.5))
    s = curve.summary()
    peak = int(curve.gold.mean(0).argmax())
    per_prompt = curve.gold[:, peak] - curve.gold[:, -1]
    assert abs(s["drop_from_peak"] - float(per_prompt.mean())) < 1e-12
    expected_se = float(per_prompt.std(unbiased=True)) / P**0.5
    assert abs(s["drop_from_peak_se"] - expected_se) < 1e-12
