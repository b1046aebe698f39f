"""The harness end to end on a tiny encoder, with a pluggable proxy family."""

from __future__ import annotations

import json

import pytest
import torch

from ebrm.data.types import Conversation, PreferencePair
from ebrm.errors import ConfigError
from ebrm.overopt import OveroptConfig, run_overopt
from ebrm.overopt.regimes import HeadSettings, regime_scorers
from ebrm.overopt.scorers import ShiftedScorer, score_all

KEYS = {"gold_peak", "kl_at_peak", "gold_at_max_kl", "drop_from_peak", "drop_from_peak_se"}


class _Shifted:
    """A fake proxy family: the base proxy plus a constant (same ranking as base)."""

    name = "shifted"

    def fit_scorers(self, train, base):
        assert torch.allclose(train.rewards, base(train.embeddings))
        return {"shifted": ShiftedScorer(base, 1.0)}


def _pairs(n):
    words = ["safe", "kind", "rude", "long", "short", "clear", "vague", "odd"]
    return [
        PreferencePair(
            chosen=Conversation(messages=(("user", f"q{i}"),),
                                response=f"{words[i % 8]} answer number {i}."),
            rejected=Conversation(messages=(("user", f"q{i}"),),
                                  response=f"{words[(i + 3) % 8]} reply {i}"),
        )
        for i in range(n)
    ]  # fmt: skip


def test_regime_rewards_flip_train_and_plug_in_families():
    gen = torch.Generator().manual_seed(0)
    emb = torch.randn(40, 4, generator=gen)
    chosen, rejected = torch.arange(20), torch.arange(20, 40)
    scorers = regime_scorers(emb, chosen, rejected, label_noise=0.25,
                             head=HeadSettings(epochs=2), families=[_Shifted()])  # fmt: skip
    out = score_all(scorers, emb)
    assert set(out) == {"base", "shifted"}
    assert torch.allclose(out["shifted"], out["base"] + 1.0)
    with pytest.raises(ValueError, match="reuses the name 'base'"):

        class _Clash(_Shifted):
            def fit_scorers(self, train, base):
                return {"base": base}

        regime_scorers(emb, chosen, rejected, label_noise=0.0, head=HeadSettings(epochs=1),
                       families=[_Clash()])  # fmt: skip


def test_end_to_end_on_a_tiny_encoder(tmp_path, tiny_bert_rm_dir):
    config = OveroptConfig(num_prompts=6, num_candidates=30, edited=10, label_noise=(0.25,),
                           proxy_fraction=0.5, head_epochs=2, pg_steps=8, references=False,
                           progress=False)  # fmt: skip
    summary = run_overopt(_pairs(40), tmp_path, encoder=str(tiny_bert_rm_dir), config=config,
                          families=[_Shifted()])  # fmt: skip
    on_disk = json.loads((tmp_path / "overopt_summary.json").read_text())
    assert on_disk["regimes"].keys() == {"noise25", "embedding_noise25"}
    ascent = on_disk["regimes"]["embedding_noise25"]
    assert ascent["policy"] == "embedding_ascent" and set(ascent["proxies"]) == {
        "base",
        "shifted",
        "gold",
    }
    for proxy in ascent["proxies"].values():
        assert set(proxy) >= KEYS
    # a shifted reward has the same gradient: the same path, a zero paired difference
    same = ascent["paired_at_max_kl"]["shifted_minus_base"]["embedding_ascent"]
    assert same["mean"] == pytest.approx(0.0, abs=1e-9)
    assert (tmp_path / "overopt-embedding_noise25.png").read_bytes()[:4] == b"\x89PNG"
    regime = on_disk["regimes"]["noise25"]
    assert set(regime["proxies"]) == {"base", "shifted", "gold"}
    for proxy in regime["proxies"].values():
        assert set(proxy) >= KEYS and set(proxy["best_of_n"]) >= KEYS
    # a constant shift changes no policy: identical curves, a zero paired difference
    diff = regime["paired_at_max_kl"]["shifted_minus_base"]["best_of_n"]
    assert diff["mean"] == pytest.approx(0.0, abs=1e-9)
    assert on_disk["pool"] == {"prompts": 6, "candidates": 30}
    assert summary["candidates"]["kinds"]["real"] == 80
    assert (tmp_path / "overopt-noise25.png").read_bytes()[:4] == b"\x89PNG"
    curves = json.loads((tmp_path / "overopt_curves.json").read_text())
    assert curves["noise25"]["base"]["best_of_n"][-1]["n"] == 30
    with pytest.raises(ConfigError, match="label_noise.*must be a non-empty tuple"):
        OveroptConfig(label_noise=(0.6,))
