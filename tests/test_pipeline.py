"""End-to-end pipeline on a tiny random RM and synthetic pairs; metrics recomputed by hand."""

from __future__ import annotations

import json
import math
import random
from dataclasses import replace

import pytest
import torch

from ebrm.data.types import Conversation, PreferencePair
from ebrm.energy.presets import PRESETS
from ebrm.errors import ConfigError, DataFormatError
from ebrm.pipeline import PipelineConfig, run_pipeline

GOOD = ["helpful", "clear", "kind", "correct", "thorough", "polite"]
BAD = ["rude", "wrong", "vague", "unsafe", "lazy", "curt"]


def synthetic_pairs(n: int, *, seed: int = 0) -> list[PreferencePair]:
    rng = random.Random(seed)
    pairs = []
    for i in range(n):
        prompt = f"question number {i} about {rng.choice(['cats', 'maths', 'cooking'])}"
        good = " ".join(rng.choices(GOOD, k=6))
        bad = " ".join(rng.choices(BAD, k=6))
        pairs.append(
            PreferencePair(
                chosen=Conversation.from_prompt(prompt, f"A {good} answer."),
                rejected=Conversation.from_prompt(prompt, f"A {bad} answer."),
                id=f"syn:{i}",
            )
        )
    return pairs


FAST = dict(
    seed=0,
    max_length=32,
    base_epochs=5,
    n_boot=200,
    progress=False,
    device="cpu",
    train_overrides=dict(
        max_steps=30, eval_every=10, min_steps=0, num_negatives=16, batch_size=16,
        joint_widths=(16,), reward_widths=(8, 8),
    ),
)  # fmt: skip


def _acc(c, r) -> float:
    return sum(1 for a, b in zip(c, r, strict=True) if a > b) / len(c)


def _ece(p_chosen, n_bins: int = 15) -> float:
    """Both orders of each pair (p for the chosen-first order, 1 - p for the other)."""
    probs = [*p_chosen, *(1.0 - p for p in p_chosen)]
    outcome = [1.0] * len(p_chosen) + [0.0] * len(p_chosen)
    total = 0.0
    for b in range(n_bins):
        lo, hi = b / n_bins, (b + 1) / n_bins
        idx = [i for i, p in enumerate(probs) if (lo <= p < hi) or (b == n_bins - 1 and p == 1.0)]
        if idx:
            conf = sum(probs[i] for i in idx) / len(idx)
            freq = sum(outcome[i] for i in idx) / len(idx)
            total += len(idx) / len(probs) * abs(conf - freq)
    return total


@pytest.fixture(scope="module")
def forwarded():
    """How many texts went through the base RM's forward pass, over this module's runs."""
    from ebrm.rm.adapter import BaseRewardModel

    seen: list[int] = []
    forward = BaseRewardModel._forward_batch

    def counting(self, rows):
        seen.append(len(rows))
        return forward(self, rows)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(BaseRewardModel, "_forward_batch", counting)
        yield seen


@pytest.fixture(scope="module")
def said():
    """What the first run printed, one "stage message" line per report."""
    return []


@pytest.fixture(scope="module")
def run(tmp_path_factory, tiny_bert_rm_dir, forwarded, said):
    out = tmp_path_factory.mktemp("pipeline")
    stages = []
    result = run_pipeline(
        out,
        PipelineConfig(base_model=tiny_bert_rm_dir, **FAST),
        data=synthetic_pairs(40),
        on_stage=lambda stage, msg: (stages.append(stage), said.append(f"{stage} {msg}")),
    )
    forwarded.append(-1)  # the first run ends here
    return result, out, stages


def test_each_text_is_embedded_once(run, forwarded):
    """The base RM stage embeds the train split's texts and keeps them (base_rm/features);
    the features stage copies those rows and embeds only the validation and test texts."""
    result, out, _ = run
    texts = {t for p in synthetic_pairs(40) for t in (p.chosen, p.rejected)}
    first_run = forwarded[: forwarded.index(-1)]
    assert sum(first_run) == len(texts)  # 80 texts, each through the forward pass once
    assert (out / "base_rm" / "features" / "manifest.json").is_file()


def test_the_features_stage_says_which_rows_it_copied_and_which_it_embedded(run, said):
    """Its bar counts every unique text; the line after it says how many were copied from
    base_rm/features (the train split's texts) and how many embedded (the others)."""
    _, out, _ = run
    texts = {t for p in synthetic_pairs(40) for t in (p.chosen, p.rejected)}
    manifest = json.loads((out / "base_rm" / "features" / "manifest.json").read_text())
    copied = manifest["num_rows"]  # the train split's unique texts, all among `texts`
    assert 0 < copied < len(texts)
    (line,) = [m for m in said if m.startswith("features") and "unique responses" in m]
    assert line.endswith(f": {copied} copied, {len(texts) - copied} embedded"), line
    assert any("are copied, not embedded" in m for m in said if m.startswith("features"))


def test_pipeline_writes_the_report_folder_and_metrics_match_saved_scores(run):
    result, out, stages = run
    assert set(stages) == {"data", "base_rm", "features", "ebrm", "eval"}
    for name in ("metrics.json", "report.md", "scores.json", "pipeline_state.json"):
        assert (out / name).is_file(), name
    assert (out / "model" / "config.json").is_file()
    assert (out / "features" / "manifest.json").is_file()
    assert sum(result.sizes.values()) == 40 and min(result.sizes.values()) > 0

    metrics = json.loads((out / "metrics.json").read_text())
    scores = json.loads((out / "scores.json").read_text())
    n = result.sizes["test"]
    assert metrics["benchmark"] == "pairwise" and metrics["n"] == n
    assert len(scores["ids"]) == n
    manifest = json.loads((out / "features" / "manifest.json").read_text())
    assert metrics["computed_with"] == {  # what the features were extracted with
        "dtype": manifest["base_rm"]["dtype"],
        "max_length": manifest["base_rm"]["max_length"],
        "truncation_side": manifest["base_rm"]["truncation_side"],
        "padding_side": manifest["base_rm"]["padding_side"],
        "batch_size": manifest["batch_size"],
    }
    base = _acc(scores["base_chosen"], scores["base_rejected"])
    refined = _acc(scores["refined_chosen"], scores["refined_rejected"])
    assert metrics["base"]["accuracy"] == pytest.approx(base)
    assert metrics["refined"]["accuracy"] == pytest.approx(refined)
    assert metrics["delta"]["accuracy"] == pytest.approx(refined - base)
    fixed = sum(
        1
        for bc, br, rc, rr in zip(
            scores["base_chosen"], scores["base_rejected"],
            scores["refined_chosen"], scores["refined_rejected"], strict=True,
        )
        if rc > rr and not bc > br
    )  # fmt: skip
    assert metrics["delta"]["improved"] == fixed
    # calibration: base = sigmoid of the raw margin, refined = the saved posterior P
    p_base = [
        1.0 / (1.0 + math.exp(-(c - r)))
        for c, r in zip(scores["base_raw_chosen"], scores["base_raw_rejected"], strict=True)
    ]
    assert metrics["base"]["ece"] == pytest.approx(_ece(p_base), abs=1e-9)
    assert metrics["refined"]["ece"] == pytest.approx(_ece(scores["p_refined"]), abs=1e-9)
    assert metrics["split"]["test"] == n


def test_base_rewards_in_scores_are_the_stored_features(run):
    """Raw base rewards of the test pairs equal those in the feature store (same pass)."""
    from ebrm.features import load_features

    result, out, _ = run
    feats = load_features(out / "features")
    n_tr, n_val = result.sizes["train"], result.sizes["validation"]
    test = feats.subset(torch.arange(n_tr + n_val, feats.num_pairs))
    scores = json.loads((out / "scores.json").read_text())
    assert torch.allclose(
        feats.rewards[test.chosen].double(),
        torch.tensor(scores["base_raw_chosen"], dtype=torch.float64),
        atol=1e-6,
    )


def test_rerun_reuses_finished_stages_and_redoes_changed_ones(run, tiny_bert_rm_dir):
    result, out, _ = run
    config = PipelineConfig(base_model=tiny_bert_rm_dir, **FAST)
    again = run_pipeline(out, config, data=synthetic_pairs(40))
    assert again.reused == ["base_rm", "features", "ebrm"]  # the store was complete
    assert again.metrics["refined"]["accuracy"] == result.metrics["refined"]["accuracy"]
    changed = {**FAST["train_overrides"], "max_steps": 20}
    third = run_pipeline(out, replace(config, train_overrides=changed), data=synthetic_pairs(40))
    assert third.reused == ["base_rm", "features"]
    info = json.loads((out / "model" / "config.json").read_text())
    assert info["train"]["config"]["max_steps"] == 20


def test_the_model_trained_and_validated_on_our_splits_only(run):
    """The energy head saw the train split, validated on ours, and never a test prompt."""
    from ebrm.data import prompt_hash, split_pairs
    from ebrm.model import EnergyRewardModel

    result, out, _ = run
    pairs = synthetic_pairs(40)
    train, val, test = split_pairs(pairs, test_fraction=0.3, validation_fraction=0.2, seed=0)
    model = EnergyRewardModel.from_pretrained(out / "model")
    info = model.train_info
    assert info["train_pairs"] == len(train) and info["validation"]["pairs"] == len(val)
    assert info["validation_split"] == "given"
    assert set(info["prompts"]["train"]) == {prompt_hash(p) for p in train}
    assert set(info["prompts"]["validation"]) == {prompt_hash(p) for p in val}
    assert model.count_seen(test) == 0 and model.count_seen(val) == len(val)


def test_too_few_pairs_is_a_data_error(tmp_path, tiny_bert_rm_dir):
    with pytest.raises(DataFormatError, match="at least 6"):
        run_pipeline(tmp_path, PipelineConfig(**FAST), data=synthetic_pairs(3))


def test_pipeline_config_validates_before_anything_runs():
    with pytest.raises(
        ConfigError, match=r"'test_fraction' parameter of PipelineConfig .*\(0, 1\)"
    ):
        PipelineConfig(test_fraction=0.0)
    with pytest.raises(
        ConfigError, match=r"'validation_fraction' .* < 1 - test_fraction \(0\.7\)\. Got 0\.7"
    ):
        PipelineConfig(validation_fraction=0.7)
    with pytest.raises(ConfigError, match="'preset' parameter of PipelineConfig must be one of"):
        PipelineConfig(preset="huge")
    # a bad TrainConfig override fails at once, not after the base RM has trained
    with pytest.raises(ConfigError, match="'num_negatives' parameter of TrainConfig"):
        PipelineConfig(train_overrides={"num_negatives": 0})


def test_pipeline_config_builds_the_train_config():
    config = PipelineConfig(preset="paper", seed=3, device="cpu", train_overrides={"margin": 1.5})
    train = config.train_config()
    paper = PRESETS["paper"]
    assert (train.seed, train.device, train.margin) == (3, "cpu", 1.5)
    assert (train.learning_rate, train.num_negatives) == (paper.learning_rate, paper.num_negatives)
    assert PipelineConfig.from_dict(config.to_dict()) == config
