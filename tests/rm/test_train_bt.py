"""Bradley-Terry base-RM training: label flips, head-only and TRL fine-tuning, saved dirs."""

from __future__ import annotations

import json
import random

import pytest
import torch

from ebrm.data import split_pairs
from ebrm.data.types import Conversation, PreferencePair
from ebrm.errors import ConfigError, DataFormatError
from ebrm.rm import BaseRewardModel
from ebrm.rm.train_bt import REPORT_NAME, BTTrainConfig, flip_labels, train_bradley_terry

WORDS = ["apple", "river", "stone", "cloud", "paper", "green", "quick", "lamp", "north", "violin"]


def keyword_pairs(n: int, *, seed: int = 0) -> list[PreferencePair]:
    """Chosen ends with 'excellent', rejected with 'terrible'; otherwise identical."""
    rng = random.Random(seed)
    pairs = []
    for i in range(n):
        prompt = " ".join(rng.choice(WORDS) for _ in range(4))
        body = " ".join(rng.choice(WORDS) for _ in range(5))
        pairs.append(
            PreferencePair(
                Conversation.from_prompt(prompt, f"{body} excellent"),
                Conversation.from_prompt(prompt, f"{body} terrible"),
                id=f"p{i}",
            )
        )
    return pairs


def accuracy_of(rm: BaseRewardModel, pairs: list[PreferencePair]) -> float:
    _, r_c = rm.embed_conversations([p.chosen for p in pairs])
    _, r_r = rm.embed_conversations([p.rejected for p in pairs])
    return float((r_c > r_r).float().mean())


@pytest.mark.parametrize("n,fraction", [(7, 0.3), (40, 0.1), (40, 0.25), (10, 0.0), (9, 1.0)])
def test_flip_labels_flips_exactly_round_p_n(n, fraction):
    pairs = keyword_pairs(n)
    flipped_pairs, flipped = flip_labels(pairs, fraction, seed=3)
    assert len(flipped) == round(fraction * n) == len(set(flipped))
    for i, (before, after) in enumerate(zip(pairs, flipped_pairs, strict=True)):
        if i in flipped:
            assert (after.chosen, after.rejected) == (before.rejected, before.chosen)
            assert after.id == before.id
        else:
            assert after == before
    assert flip_labels(pairs, fraction, seed=3)[1] == flipped  # seeded
    if 0 < len(flipped) < n - 1:
        assert any(flip_labels(pairs, fraction, seed=s)[1] != flipped for s in range(4, 9))


def test_frozen_encoder_learns_keyword_and_saves_a_loadable_rm(tiny_rm_factory, tmp_path):
    pairs = keyword_pairs(60)
    config = BTTrainConfig(freeze_encoder=True, seed=1, batch_size=8, max_length=64, progress=False)
    out = tmp_path / "rm"
    before = BaseRewardModel.from_pretrained(tiny_rm_factory("llama"), device="cpu")
    result = train_bradley_terry(
        tiny_rm_factory("llama"), pairs, out, config=config, data_spec="synthetic"
    )
    assert result.train_accuracy >= 0.95 and result.num_flipped == 0
    rm = BaseRewardModel.from_pretrained(out, device="cpu")
    # only the head changed
    for name, tensor in rm.model.state_dict().items():
        same = torch.equal(tensor, before.model.state_dict()[name])
        assert same != (name == "score.weight"), name
    # the saved RM reproduces the recorded accuracies on the same seeded split
    train, validation, _ = split_pairs(pairs, test_fraction=0.0, validation_fraction=0.1, seed=1)
    assert abs(accuracy_of(rm, train) - result.train_accuracy) < 1e-9
    assert abs(accuracy_of(rm, validation) - result.validation_accuracy) < 1e-9
    emb, rew = rm.embed_conversations([p.chosen for p in pairs[:6]])
    torch.testing.assert_close(rm.head_reward(emb), rew, atol=1e-5, rtol=0)
    report = json.loads((out / REPORT_NAME).read_text())
    assert report["data"] == "synthetic" and report["config"]["seed"] == 1
    assert report["trainer"] == "bt-head-loop" and report["num_train"] == len(train)
    assert report["validation_accuracy"] == result.validation_accuracy


def test_label_noise_is_recorded_and_clean_accuracy_differs(tiny_rm_factory, tmp_path):
    pairs = keyword_pairs(50)
    config = BTTrainConfig(
        freeze_encoder=True,
        label_noise=0.2,
        seed=0,
        batch_size=8,
        max_length=64,
        validation_fraction=0.2,
        progress=False,
    )
    result = train_bradley_terry(tiny_rm_factory("llama"), pairs, tmp_path / "rm", config=config)
    assert result.num_flipped == round(0.2 * result.num_train)
    report = json.loads((tmp_path / "rm" / REPORT_NAME).read_text())
    assert report["num_flipped"] == result.num_flipped and report["config"]["label_noise"] == 0.2
    # a keyword-perfect head is right on the clean labels and wrong on every flipped one
    if result.train_accuracy_clean == 1.0:
        expected = 1 - result.num_flipped / result.num_train
        assert result.train_accuracy == pytest.approx(expected)


def test_full_fine_tune_with_trl_lowers_the_bt_loss(tiny_rm_factory, tmp_path):
    pairs = keyword_pairs(16)
    path = tiny_rm_factory("gpt2")
    config = BTTrainConfig(
        epochs=2,
        learning_rate=3e-3,
        batch_size=8,
        max_length=32,
        validation_fraction=0.0,
        progress=False,
    )
    before = BaseRewardModel.from_pretrained(path, device="cpu")

    def bt_loss(rm):
        _, r_c = rm.embed_conversations([p.chosen for p in pairs])
        _, r_r = rm.embed_conversations([p.rejected for p in pairs])
        return float(-torch.nn.functional.logsigmoid(r_c - r_r).mean())

    result = train_bradley_terry(path, pairs, tmp_path / "rm", config=config)
    after = BaseRewardModel.from_pretrained(tmp_path / "rm", device="cpu")
    assert bt_loss(after) < bt_loss(before)
    assert result.validation_accuracy is None and result.num_train == 16
    changed = [
        name
        for name, t in after.model.state_dict().items()
        if not torch.equal(t, before.model.state_dict()[name])
    ]
    assert len(changed) > 5  # the encoder trained, not only the head
    report = json.loads((tmp_path / "rm" / REPORT_NAME).read_text())
    assert report["trainer"] == "trl.RewardTrainer"
    assert sorted(p.name for p in (tmp_path).iterdir()) == ["rm"]  # no scratch left behind


def test_errors(tiny_rm_factory, tmp_path):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    with pytest.raises(ConfigError, match="exists and is not empty"):
        train_bradley_terry(tiny_rm_factory("llama"), keyword_pairs(4), tmp_path / "full")
    with pytest.raises(DataFormatError, match="No preference pairs"):
        train_bradley_terry(tiny_rm_factory("llama"), [], tmp_path / "new")
    with pytest.raises(
        ConfigError,
        match=r"The 'label_noise' parameter of BTTrainConfig must be a finite float in \[0, 1\]\. "
        r"Got 1.5 instead\.",
    ):
        BTTrainConfig(label_noise=1.5)
    with pytest.raises(ConfigError, match="validation_fraction"):
        BTTrainConfig(validation_fraction=1.0)
    with pytest.raises(ConfigError, match="Could not load a model"):
        train_bradley_terry(tmp_path / "missing", keyword_pairs(4), tmp_path / "new")


@pytest.mark.slow
def test_minilm_frozen_encoder_learns_keyword(tmp_path):
    from tests.tiny_models import minilm_path

    pairs = keyword_pairs(40)
    config = BTTrainConfig(freeze_encoder=True, max_length=64, progress=False)
    result = train_bradley_terry(minilm_path(), pairs, tmp_path / "rm", config=config)
    assert result.train_accuracy >= 0.9
    rm = BaseRewardModel.from_pretrained(tmp_path / "rm", device="cpu")
    emb, rew = rm.embed_conversations([p.rejected for p in pairs[:8]])
    torch.testing.assert_close(rm.head_reward(emb), rew, atol=1e-5, rtol=0)
