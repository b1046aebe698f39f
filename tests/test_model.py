"""EnergyRewardModel: refine, input validation, save/load round trip, base-RM checks."""

from __future__ import annotations

import json
import logging

import pytest
import torch

from ebrm.data.types import Conversation
from ebrm.energy.config import EnergyHeadConfig
from ebrm.energy.head import EnergyHead
from ebrm.energy.normalize import RewardNormalizer
from ebrm.errors import (
    ConfigError,
    CorruptArtifactError,
    DataFormatError,
    IncompatibleArtifactError,
)
from ebrm.model import EnergyRewardModel
from ebrm.refine import grid_posterior, paper_refine
from ebrm.refine.config import RefineConfig
from tests.fakes import SeededRM

DIM = 12
BASE_INFO = {"name_or_path": "org/base-rm", "weights_hash": "sha256:aaa", "hidden_size": DIM}
TRAIN_INFO = {"validation": {"base_accuracy": 0.61, "refined_accuracy": 0.64}, "steps": 10}


def make_model(method: str = "mean", **refine) -> EnergyRewardModel:
    torch.manual_seed(0)
    head = EnergyHead(EnergyHeadConfig(embedding_dim=DIM, reward_widths=(4, 8), joint_widths=(16,)))
    norm = RewardNormalizer(scale=4.0).fit(torch.linspace(-2, 3, 50))
    cfg = RefineConfig(method=method, grid_min=-12.0, grid_max=12.0, grid_size=64, **refine)
    return EnergyRewardModel(head, norm, cfg, dict(BASE_INFO), dict(TRAIN_INFO))


def data(n: int = 20, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, DIM, generator=g), torch.randn(n, generator=g)


def test_refine_matches_the_refinement_functions():
    model = make_model()
    emb, raw = data()
    out = model.refine(emb, raw)
    post = grid_posterior(model.head, emb, grid=model.refine_config.grid())
    assert torch.equal(out.mean, post.mean) and torch.equal(out.mode, post.mode)
    assert torch.equal(out.reward, out.mean) and out.method == "mean"
    torch.testing.assert_close(out.base, model.normalizer.transform(raw))
    assert torch.equal(out.base_raw, raw)
    torch.testing.assert_close(out.conservative, post.mean - post.spread)
    assert torch.equal(out.reward_for("median"), post.q50)
    assert torch.equal(out.reward_for("base"), out.base)
    torch.testing.assert_close(model.to_raw(out.base), raw, atol=1e-5, rtol=0)
    records = out.to_records()
    assert len(records) == 20 and records[3]["mean"] == pytest.approx(float(post.mean[3]))
    # each kind under its name, with the value `reward_for` gives
    for kind in ("refined", "mean", "mode", "median", "conservative", "base"):
        assert records[3][kind] == pytest.approx(float(out.reward_for(kind)[3])), kind
    with pytest.raises(ConfigError, match="Unknown reward 'best'"):
        out.reward_for("best")


def test_methods_select_the_reported_reward():
    model = make_model(conservative_k=2.0)
    emb, raw = data()
    assert torch.equal(model.refine(emb, raw, method="mode").reward, model.refine(emb, raw).mode)
    cons = model.refine(emb, raw, method="conservative")
    torch.testing.assert_close(cons.reward, cons.mean - 2.0 * cons.spread)
    paper = model.refine(emb, raw, method="paper")
    expected = paper_refine(model.head, emb, paper.base, generator=torch.Generator().manual_seed(0))
    assert torch.equal(paper.reward, expected)
    assert torch.equal(paper.reward, model.refine(emb, raw, method="paper").reward)  # seeded
    ascent = model.refine(emb, raw, method="ascent")
    assert torch.equal(ascent.reward, paper_refine(model.head, emb, ascent.base, hybrid_init=False))
    with pytest.raises(ConfigError, match="Unknown refinement method 'best'"):
        model.refine(emb, raw, method="best")


def test_bad_input_is_explained():
    model = make_model()
    emb, raw = data(5)
    bad = emb.clone()
    bad[3, 0] = float("inf")
    with pytest.raises(DataFormatError, match="NaN or infinite .*first bad row: 3"):
        model.refine(bad, raw)
    nan_raw = raw.clone()
    nan_raw[1] = float("nan")
    with pytest.raises(DataFormatError, match="base_rewards contain NaN .*first bad row: 1"):
        model.refine(emb, nan_raw)
    with pytest.raises(IncompatibleArtifactError, match="dimension 7 .* dimension 12"):
        model.refine(torch.randn(5, 7), raw)
    with pytest.raises(DataFormatError, match="embeddings \\(N, D\\) and base_rewards \\(N,\\)"):
        model.refine(emb, raw[:4])
    # empty input is not an error: it returns empty results (but a wrong width still is)
    empty = model.refine(torch.zeros(0, DIM), torch.zeros(0))
    assert len(empty) == 0 and empty.to_records() == [] and empty.std.shape == (0,)
    with pytest.raises(IncompatibleArtifactError, match="dimension 3"):
        model.refine(torch.zeros(0, 3), torch.zeros(0))


def test_round_trip_reproduces_scores_exactly(tmp_path):
    model = make_model(method="conservative")
    emb, raw = data(30)
    before = model.refine(emb, raw)
    model.save_pretrained(tmp_path / "m")
    loaded = EnergyRewardModel.from_pretrained(tmp_path / "m", device="cpu")
    after = loaded.refine(emb, raw)
    for name in ("reward", "base", "mean", "std", "q05", "q50", "q95", "mode", "log_z"):
        assert torch.equal(getattr(before, name), getattr(after, name)), name
    assert loaded.refine_config == model.refine_config
    assert loaded.base_rm_info == BASE_INFO and loaded.train_info == TRAIN_INFO
    assert torch.equal(model.p_better(emb[:5], emb[5:10]), loaded.p_better(emb[:5], emb[5:10]))


def test_directory_layout_and_model_card(tmp_path):
    make_model().save_pretrained(tmp_path / "m")
    names = sorted(p.name for p in (tmp_path / "m").iterdir())
    assert names == ["README.md", "config.json", "energy_head.safetensors"]
    text = (tmp_path / "m" / "config.json").read_text()
    config = json.loads(text)
    assert text == json.dumps(config, indent=2, sort_keys=True) + "\n"
    assert set(config["versions"]) >= {"ebrm", "torch", "transformers"}
    assert config["base_rm"]["weights_hash"] == "sha256:aaa"
    assert config["head"]["embedding_dim"] == DIM and config["normalizer"]["scale"] == 4.0
    card = (tmp_path / "m" / "README.md").read_text()
    assert "org/base-rm" in card and "+3.00 points" in card
    # a point estimate alone is never called a verdict (issue 17: honest model cards)
    assert "no paired interval was recorded" in card and "helped" not in card
    assert b"pickle" not in (tmp_path / "m" / "energy_head.safetensors").read_bytes()[:8]


def test_saving_over_a_model_replaces_it_and_keeps_other_files(tmp_path):
    target = tmp_path / "m"
    make_model().save_pretrained(target)
    (target / "history.json").write_text("[]")
    model = make_model(method="mode")
    model.save_pretrained(target)
    loaded = EnergyRewardModel.from_pretrained(target)
    assert loaded.refine_config.method == "mode"
    assert (target / "history.json").read_text() == "[]"
    assert [p.name for p in tmp_path.iterdir()] == ["m"]  # no temp or backup dirs left


def test_a_failed_save_leaves_the_previous_model_intact(tmp_path, monkeypatch):
    target = tmp_path / "m"
    make_model().save_pretrained(target)
    before = {p.name: p.read_bytes() for p in target.iterdir()}
    model = make_model(method="mode")
    model.train_info["bad"] = object()  # not JSON: rejected before anything is written
    with pytest.raises(ConfigError, match="train.bad holds a object"):
        model.save_pretrained(target)
    del model.train_info["bad"]

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("ebrm.model.card.render_model_card", broken)
    with pytest.raises(OSError, match="disk full"):
        model.save_pretrained(target)
    assert {p.name: p.read_bytes() for p in target.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir()] == ["m"]


def test_missing_and_corrupt_files_are_named(tmp_path):
    target = tmp_path / "m"
    make_model().save_pretrained(target)
    weights = target / "energy_head.safetensors"
    good = weights.read_bytes()
    weights.write_bytes(good[: len(good) // 2])
    with pytest.raises(
        CorruptArtifactError, match="energy_head.safetensors (cannot be read|fails its checksum)"
    ):
        EnergyRewardModel.from_pretrained(target)
    weights.unlink()
    with pytest.raises(CorruptArtifactError, match="energy_head.safetensors is missing"):
        EnergyRewardModel.from_pretrained(target)
    weights.write_bytes(good)
    config = target / "config.json"
    config.write_text("{not json")
    with pytest.raises(CorruptArtifactError, match="config.json is not valid JSON"):
        EnergyRewardModel.from_pretrained(target)
    config.unlink()
    with pytest.raises(CorruptArtifactError, match="config.json is missing"):
        EnergyRewardModel.from_pretrained(target)
    with pytest.raises(ConfigError, match="No refined-model directory"):
        EnergyRewardModel.from_pretrained(tmp_path / "nowhere")


def test_wrong_head_shape_and_foreign_config_are_rejected(tmp_path):
    target = tmp_path / "m"
    make_model().save_pretrained(target)
    config = json.loads((target / "config.json").read_text())
    config["head"]["joint_widths"] = [32]
    (target / "config.json").write_text(json.dumps(config))
    with pytest.raises(CorruptArtifactError, match="does not match the head"):
        EnergyRewardModel.from_pretrained(target)
    (target / "config.json").write_text(json.dumps({"model_type": "llama"}))
    with pytest.raises(IncompatibleArtifactError, match="config.json is not an ebrm refined model"):
        EnergyRewardModel.from_pretrained(target)


def test_unknown_config_keys_are_tolerated_with_a_warning(tmp_path, caplog):
    target = tmp_path / "m"
    make_model().save_pretrained(target)
    config = json.loads((target / "config.json").read_text())
    config["added_later"] = {"x": 1}
    config["refine"]["new_knob"] = 3
    (target / "config.json").write_text(json.dumps(config))
    with caplog.at_level(logging.WARNING):
        EnergyRewardModel.from_pretrained(target)
    assert "added_later" in caplog.text and "new_knob" in caplog.text


def test_base_rm_checks_and_score(tmp_path):
    model = make_model()
    model.save_pretrained(tmp_path / "m")
    with pytest.raises(IncompatibleArtifactError, match="sha256:bbb.*sha256:aaa"):
        EnergyRewardModel.from_pretrained(tmp_path / "m", base_rm=SeededRM("sha256:bbb"))
    with pytest.raises(IncompatibleArtifactError, match="hidden size 8"):
        model.attach_base_rm(SeededRM(hidden_size=8))
    # the same RM loaded with other extraction settings embeds other vectors: refused
    model.base_rm_info.update(max_length=128, truncation_side="left")
    for key, other, named in (
        ("max_length", 256, "max length 256 .* made with 128"),
        ("truncation_side", "right", "truncation side 'right' .* made with 'left'"),
    ):
        wrong = SeededRM()
        setattr(wrong, key, other)
        with pytest.raises(IncompatibleArtifactError, match=named):
            model.attach_base_rm(wrong)
    rm = SeededRM()
    loaded = EnergyRewardModel.from_pretrained(tmp_path / "m", base_rm=rm)
    convs = [Conversation.from_prompt("q", f"answer {i}") for i in range(4)]
    scored = loaded.score(convs, batch_size=2)
    emb, raw = data(4, seed=7)
    assert rm.calls == [(4, 2)]
    assert torch.equal(scored.mean, loaded.refine(emb, raw).mean)


def test_base_rm_is_loaded_lazily_from_the_recorded_provenance(monkeypatch):
    from ebrm.rm import adapter

    seen = {}

    def fake_from_pretrained(name, **kwargs):
        seen.update(name=name, **kwargs)
        return SeededRM()

    monkeypatch.setattr(adapter.BaseRewardModel, "from_pretrained", fake_from_pretrained)
    model = make_model()
    model.base_rm_info.update(revision="abc123", max_length=256, truncation_side="left")
    model.score([Conversation.from_prompt("q", "a")])
    assert seen["name"] == "org/base-rm" and seen["revision"] == "abc123"
    assert seen["max_length"] == 256
    model.base_rm_info["weights_hash"] = "sha256:zzz"
    model._base_rm = None
    with pytest.raises(IncompatibleArtifactError, match="sha256:aaa.*sha256:zzz"):
        model.score([Conversation.from_prompt("q", "a")])


def test_score_with_a_real_tiny_base_rm(tiny_rm_dir, tmp_path):
    from ebrm.rm.adapter import BaseRewardModel

    rm = BaseRewardModel.from_pretrained(tiny_rm_dir, device="cpu", max_length=64)
    torch.manual_seed(0)
    head = EnergyHead(EnergyHeadConfig(embedding_dim=rm.hidden_size, joint_widths=(16,)))
    norm = RewardNormalizer().fit(torch.tensor([-0.1, 0.0, 0.2]))
    EnergyRewardModel(head, norm, RefineConfig(grid_size=32), rm.provenance()).save_pretrained(
        tmp_path / "m"
    )
    loaded = EnergyRewardModel.from_pretrained(tmp_path / "m", device="cpu")  # RM loaded lazily
    convs = [Conversation.from_prompt("hi", "hello there"), Conversation.from_prompt("a", "b")]
    scored = loaded.score(convs)
    emb, raw = rm.embed_conversations(convs)
    assert torch.equal(scored.base_raw, raw)
    assert torch.equal(scored.mean, loaded.refine(emb, raw).mean)


def _pair(prompt: str, i: int):
    from ebrm.data import PreferencePair

    return PreferencePair(
        Conversation.from_prompt(prompt, f"good {i}"), Conversation.from_prompt(prompt, f"bad {i}")
    )


def test_seen_prompts_survive_a_round_trip_and_count_overlap(tmp_path):
    from ebrm.data import prompt_hash

    seen = [_pair(f"trained {i}", i) for i in range(20)] + [_pair("validated", 0)]
    model = make_model()
    model.train_info["prompts"] = {
        "hash": "ebrm.data.prompt_hash",
        "train": sorted({prompt_hash(p) for p in seen[:20]}),
        "validation": [prompt_hash(seen[20])],
    }
    model.save_pretrained(tmp_path / "m")
    loaded = EnergyRewardModel.from_pretrained(tmp_path / "m")
    assert loaded.seen_prompt_hashes() == {prompt_hash(p) for p in seen}
    evaluation = [_pair("trained 3", 99), _pair("validated", 5), _pair("new", 1)]
    assert loaded.count_seen(evaluation) == 2  # same prompt, other responses: still seen
    card = (tmp_path / "m" / "README.md").read_text()
    assert "20 values" in card and prompt_hash(seen[0]) not in card  # counted, not listed
    # a model that records no prompts cannot say
    assert make_model().seen_prompt_hashes() is None
    assert make_model().count_seen(evaluation) is None


def make_model_with_references():
    """`make_model()` with Laplace and ensemble references fitted on 30 pairs of `data`
    (20 train, 10 validation): (model, embeddings, raw rewards)."""
    from ebrm.references import fit_references

    emb, raw = data(60, seed=3)
    chosen, rejected = torch.arange(0, 60, 2), torch.arange(1, 60, 2)
    model = make_model()
    model.references = fit_references(
        emb, chosen[:20], rejected[:20], chosen[20:], rejected[20:], raw_rewards=raw,
        ensemble_size=3,
    )  # fmt: skip
    return model, emb, raw
