"""Over-optimisation harness: policy math against brute force, curve shapes, the pool."""

from __future__ import annotations

import itertools
import json
import math

import pytest
import torch

from ebrm.data.types import Conversation, PreferencePair
from ebrm.errors import ConfigError
from ebrm.integrations.best_of_n import best_of_n_weights
from ebrm.overopt import OveroptConfig, run_overopt
from ebrm.overopt.curves import (
    bon_curve,
    kl_regularised_curve,
    overopt_curves,
    paired_gain,
    summarise,
)
from ebrm.overopt.plot import plot_overopt
from ebrm.overopt.policies import bon_kl, bon_policy, kl_from_uniform, kl_regularised_policy
from ebrm.overopt.pool import build_pool

# ---- the KL-regularised policy -------------------------------------------------------------


def test_kl_regularised_policy_matches_a_loop_over_the_pool():
    gen = torch.Generator().manual_seed(0)
    gold = torch.randn(3, 5, generator=gen)
    proxy = torch.randn(3, 5, generator=gen)
    betas = [0.2, 1.0, 7.0]
    points = {p["beta"]: p for p in kl_regularised_curve(gold, proxy, betas)}
    for beta in betas:
        kls, golds = [], []
        for p in range(3):
            w = [math.exp(float(proxy[p, k]) / beta) for k in range(5)]
            z = sum(w)
            pi = [x / z for x in w]
            kls.append(sum(q * math.log(q / (1 / 5)) for q in pi))
            golds.append(sum(q * float(gold[p, k]) for k, q in enumerate(pi)))
        point = points[beta]
        assert point["kl"] == pytest.approx(sum(kls) / 3, rel=1e-9)
        assert point["gold"] == pytest.approx(sum(golds) / 3, rel=1e-9)


def test_kl_limits_zero_at_infinite_beta_and_log_k_at_argmax():
    proxy = torch.tensor([[0.0, 1.0, 2.0, 3.0]])
    assert float(kl_from_uniform(kl_regularised_policy(proxy, math.inf))) == pytest.approx(0.0)
    near_argmax = kl_regularised_policy(proxy, 1e-4)
    assert float(kl_from_uniform(near_argmax)) == pytest.approx(math.log(4), abs=1e-9)
    with pytest.raises(ValueError, match="beta must be > 0"):
        kl_regularised_policy(proxy, 0.0)


# ---- best-of-n ----------------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 2, 3, 8, 32])
def test_bon_kl_formula_equals_the_integral_over_quantiles(n):
    # continuous rewards: the best-of-n quantile u has density n u^(n-1) against pi0's 1
    m = 200_000
    u = (torch.arange(m, dtype=torch.float64) + 0.5) / m
    density = n * u ** (n - 1)
    assert bon_kl(n) == pytest.approx(float((density * torch.log(density)).mean()), abs=1e-4)


@pytest.mark.parametrize("n", [2, 4, 16])
def test_bon_kl_is_the_limit_of_the_exact_discrete_kl_on_a_large_pool(n):
    weights = best_of_n_weights(torch.arange(5000.0), n)
    assert float(kl_from_uniform(weights[None])) == pytest.approx(bon_kl(n), abs=2e-3)


def test_bon_policy_rank_shortcut_equals_the_per_row_estimator_with_and_without_ties():
    gen = torch.Generator().manual_seed(2)
    proxy = torch.randn(5, 7, generator=gen, dtype=torch.float64)
    tied = proxy.clone()
    tied[2, 3] = tied[2, 5]
    for rows in (proxy, tied):
        for n in (1, 3, 7):
            expected = torch.stack([best_of_n_weights(row, n) for row in rows])
            assert torch.allclose(bon_policy(rows, n), expected, atol=1e-12)


def test_bon_curve_matches_brute_force_subsets():
    gen = torch.Generator().manual_seed(1)
    gold, proxy = torch.randn(2, 6, generator=gen), torch.randn(2, 6, generator=gen)
    for point in bon_curve(gold, proxy, [1, 2, 4]):
        n, per_prompt = point["n"], []
        for p in range(2):
            subsets = list(itertools.combinations(range(6), n))
            picks = [max(s, key=lambda k: float(proxy[p, k])) for s in subsets]
            per_prompt.append(sum(float(gold[p, k]) for k in picks) / len(subsets))
        assert point["gold"] == pytest.approx(sum(per_prompt) / 2, rel=1e-9)
        assert point["kl"] == bon_kl(n)


# ---- curve assembly on synthetic rewards ---------------------------------------------------


def _hacked(prompts=400, k=32, seed=0):
    """gold ~ N(0,1); the proxy adds +6 to the rare worst responses (gold < -2): hacking."""
    gen = torch.Generator().manual_seed(seed)
    gold = torch.randn(prompts, k, generator=gen, dtype=torch.float64)
    proxy = gold + 6.0 * (gold < -2.0) + 0.1 * torch.randn(prompts, k, generator=gen)
    return gold, proxy


def test_structured_proxy_error_makes_gold_rise_then_fall_while_the_oracle_keeps_rising():
    gold, proxy = _hacked()
    curves = overopt_curves(gold, {"base": proxy})
    for kind in ("best_of_n", "kl_regularised"):
        points = curves["base"][kind]
        s = curves["base"]["summary"][kind]
        golds = [p["gold"] for p in points]
        peak = golds.index(max(golds))
        assert 0 < peak < len(points) - 1  # an interior peak
        assert golds[peak] > golds[0] + 0.1  # first it helps ...
        assert s["at_max_kl"]["gold"] < s["peak"]["gold"] - 0.3  # ... then it hurts
        assert s["drop_from_peak"] == pytest.approx(s["peak"]["gold"] - s["at_max_kl"]["gold"])
        oracle = [p["gold"] for p in curves["gold"][kind]]
        assert all(b >= a - 1e-9 for a, b in zip(oracle, oracle[1:], strict=False))


def test_curves_start_at_the_pool_mean_and_bon_kl_follows_the_formula():
    gold, proxy = _hacked(prompts=20, k=8)
    curves = overopt_curves(gold, {"base": proxy, "other": -proxy}, max_n=5)
    for name in ("base", "other", "gold"):
        bon, klr = curves[name]["best_of_n"], curves[name]["kl_regularised"]
        assert [p["n"] for p in bon] == [1, 2, 3, 4, 5]
        assert [p["kl"] for p in bon] == [bon_kl(n) for n in range(1, 6)]
        assert bon[0]["gold"] == pytest.approx(float(gold.mean()))
        assert klr[0]["kl"] == pytest.approx(0.0) and klr[0]["gold"] == pytest.approx(
            float(gold.mean())
        )
        assert [p["kl"] for p in klr] == sorted(p["kl"] for p in klr)
    with pytest.raises(ValueError, match="max_n must be in 1..8"):
        overopt_curves(gold, {"base": proxy}, max_n=9)


def test_relative_betas_make_the_kl_curve_invariant_to_the_proxy_scale():
    gold, proxy = _hacked(prompts=20, k=8)
    curves = overopt_curves(gold, {"a": proxy, "b": 100.0 * proxy}, include_oracle=False)
    for pa, pb in zip(curves["a"]["kl_regularised"], curves["b"]["kl_regularised"], strict=True):
        assert pa["kl"] == pytest.approx(pb["kl"]) and pa["gold"] == pytest.approx(pb["gold"])
        assert pa["beta_relative"] == pytest.approx(pb["beta_relative"])
    fixed = overopt_curves(gold, {"b": 100.0 * proxy}, relative_betas=False)
    assert fixed["b"]["kl_regularised"][-1]["kl"] > curves["b"]["kl_regularised"][-1]["kl"] - 1e-9


def test_paired_gain_is_the_difference_of_the_curves():
    gold, proxy = _hacked(prompts=30, k=8)
    other = gold + 0.5 * torch.randn(gold.shape, generator=torch.Generator().manual_seed(3))
    gain = paired_gain(gold, other, proxy, n=8, beta=0.1)
    a, b = bon_curve(gold, other, [8])[0], bon_curve(gold, proxy, [8])[0]
    assert gain["best_of_n"]["mean"] == pytest.approx(a["gold"] - b["gold"], abs=1e-12)
    a, b = kl_regularised_curve(gold, other, [0.1])[0], kl_regularised_curve(gold, proxy, [0.1])[0]
    assert gain["kl_regularised"]["mean"] == pytest.approx(a["gold"] - b["gold"], abs=1e-12)
    assert gain["best_of_n"]["se"] > 0


def test_summarise_picks_the_highest_gold_and_the_largest_kl():
    points = [{"kl": 0.0, "gold": 0.0}, {"kl": 1.0, "gold": 2.0}, {"kl": 3.0, "gold": 1.0}]
    s = summarise(points)
    assert s["peak"] == {"kl": 1.0, "gold": 2.0} and s["at_max_kl"] == {"kl": 3.0, "gold": 1.0}


def test_plot_writes_a_png(tmp_path):
    gold, proxy = _hacked(prompts=10, k=6)
    curves = overopt_curves(gold, {"base": proxy, "refined": proxy, "conservative": proxy})
    plot_overopt(curves, tmp_path / "f.png", title="t")
    assert (tmp_path / "f.png").read_bytes()[:4] == b"\x89PNG"


# ---- the BT head and the pool ---------------------------------------------------------------


def _pairs(n):
    return [
        PreferencePair(
            chosen=Conversation(messages=(("user", f"q{i}"),), response=f"good {i}"),
            rejected=Conversation(messages=(("user", f"q{i}"),), response=f"bad {i}"),
            id=f"p{i}",
        )
        for i in range(n)
    ]


def test_pool_has_own_responses_first_then_distinct_others_from_other_pairs():
    pairs = _pairs(10)
    pool = build_pool(pairs, [3, 7], num_candidates=6, seed=0)
    assert pool.num_prompts == 2 and len(pool.conversations) == 12
    for p, index in enumerate([3, 7]):
        rows = pool.conversations[p * 6 : (p + 1) * 6]
        assert rows[0].response == f"good {index}" and rows[1].response == f"bad {index}"
        assert all(c.messages == (("user", f"q{index}"),) for c in rows)
        others = [c.response for c in rows[2:]]
        assert len(set(others)) == 4 and not any(o.endswith(f" {index}") for o in others)
    assert pool.sources[:6] == ("chosen", "rejected", "other", "other", "other", "other")
    again = build_pool(pairs, [3, 7], num_candidates=6, seed=0)
    assert again == pool
    assert build_pool(pairs, [3, 7], num_candidates=6, seed=1) != pool


def test_pool_errors_name_the_fix():
    with pytest.raises(ConfigError, match="use fewer --candidates"):
        build_pool(_pairs(3), [0], num_candidates=7)
    with pytest.raises(ConfigError, match="num_candidates must be >= 2"):
        build_pool(_pairs(3), [0], num_candidates=1)


def test_config_and_run_errors(tmp_path):
    with pytest.raises(
        ConfigError,
        match=r"The 'max_n' parameter of OveroptConfig must be None or an int in \[1, 4\]\. Got 5",
    ):
        OveroptConfig(num_candidates=4, max_n=5)
    with pytest.raises(ConfigError, match=r"'label_noise' parameter .* float in \[0, 1\]"):
        OveroptConfig(label_noise=1.5)
    with pytest.raises(ConfigError, match="--ebrm needs --proxy"):
        run_overopt(_pairs(10), tmp_path, ebrm=tmp_path)
    with pytest.raises(ConfigError, match="--gold and --proxy go together"):
        run_overopt(_pairs(10), tmp_path, gold=tmp_path)
    with pytest.raises(ConfigError, match="lower --prompts"):
        run_overopt(_pairs(10), tmp_path, gold=tmp_path, proxy=tmp_path,
                    config=OveroptConfig(num_prompts=6))  # fmt: skip


def test_default_recipe_heads_share_the_frozen_encoder(tmp_path, tiny_bert_rm_dir):
    from ebrm.overopt.recipe import pair_features, recipe_record, train_recipe_rms
    from ebrm.rm import BaseRewardModel
    from ebrm.rm.train_bt import BTTrainConfig, load_trainable_rm

    pairs = _pairs(12)
    config = OveroptConfig(num_prompts=2, num_candidates=4, head_epochs=2, progress=False)
    encoder = load_trainable_rm(str(tiny_bert_rm_dir), BTTrainConfig(max_length=128))
    store, features = pair_features(encoder, pairs, tmp_path, config)
    record = recipe_record(store, config)
    rows = torch.arange(6)
    said = []
    models = train_recipe_rms(pairs, rows, features, record, str(tiny_bert_rm_dir), tmp_path,
                              config, lambda stage, msg: said.append(msg))  # fmt: skip
    gold = BaseRewardModel.from_pretrained(str(models.gold), max_length=config.max_length)
    proxy = BaseRewardModel.from_pretrained(str(models.proxy), max_length=config.max_length)
    assert not torch.equal(gold.head.weight, proxy.head.weight)
    record_file = json.loads((models.proxy / "ebrm_base_rm.json").read_text())
    assert record_file["flipped"] == round(0.25 * 6) and record_file["role"] == "proxy"
    # the saved RMs score as the heads on the shared encoder's stored embeddings
    emb, reward = proxy.embed_conversations([p.chosen for p in pairs])
    assert torch.allclose(reward, emb @ models.proxy_weight, atol=1e-5)
    assert torch.allclose(emb, features.embeddings[features.chosen], atol=1e-5)

    mtime = (models.proxy / "model.safetensors").stat().st_mtime_ns
    train_recipe_rms(pairs, rows, features, record, str(tiny_bert_rm_dir), tmp_path, config,
                     lambda *a: None)  # fmt: skip
    assert (models.proxy / "model.safetensors").stat().st_mtime_ns == mtime  # reused
    noisier = OveroptConfig(num_prompts=2, num_candidates=4, head_epochs=2, label_noise=0.5)
    train_recipe_rms(pairs, rows, features, recipe_record(store, noisier),
                     str(tiny_bert_rm_dir), tmp_path, noisier, lambda *a: None)  # fmt: skip
    assert json.loads((models.proxy / "ebrm_base_rm.json").read_text())["flipped"] == 3


@pytest.mark.slow
def test_full_default_recipe_on_a_tiny_encoder(tmp_path, tiny_bert_rm_dir):
    pairs = _pairs(40)
    config = OveroptConfig(num_prompts=4, num_candidates=5, head_epochs=2, progress=False)
    result = run_overopt(pairs, tmp_path, encoder=str(tiny_bert_rm_dir), config=config)
    assert set(result["curves"]) == {"base", "refined", "conservative", "gold"}
    assert (tmp_path / "models" / "ebrm" / "config.json").exists()
