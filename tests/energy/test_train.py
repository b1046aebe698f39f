"""The trainer: config validation, bad input, determinism, learnability, objectives."""

import json

import pytest
import torch

from ebrm.energy import TrainConfig, train_energy_head
from ebrm.energy.presets import PRESETS
from ebrm.energy.validation import choose_method
from ebrm.errors import ConfigError, DataFormatError, IncompatibleArtifactError
from ebrm.features.table import PairFeatures
from tests.energy.synthetic import make_synthetic

FAST = dict(num_negatives=32, batch_size=64, eval_every=25, min_steps=0, patience=None)


def _refined_accuracy(model, features):
    post = model.posterior(features.embeddings)
    return (post.mean[features.chosen] > post.mean[features.rejected]).double()


def test_config_messages():
    with pytest.raises(
        ConfigError,
        match=r"'num_negatives' parameter of TrainConfig must be an "
        r"int >= 1\. Got 0 instead\.",
    ):
        TrainConfig(num_negatives=0)
    with pytest.raises(ConfigError, match="'objective' parameter of TrainConfig"):
        TrainConfig(objective="dpo")
    with pytest.raises(ConfigError, match="'max_steps' parameter .* Set a budget"):
        TrainConfig(max_steps=None, epochs=None)
    with pytest.raises(
        ConfigError, match=r"'name' parameter of TrainConfig.preset must be one of .*Got 'big'"
    ):
        TrainConfig.preset("big")
    assert TrainConfig.from_dict(TrainConfig().to_dict()) == TrainConfig()


def test_paper_preset_is_the_design_reference():
    p = PRESETS["paper"]
    assert (p.noise_std, p.reward_scale, p.positive_noise_ratio, p.num_negatives) == (
        3.5,
        4.0,
        0.1,
        768,
    )
    assert (p.reg_weight, p.learning_rate, p.weight_decay, p.batch_size, p.epochs) == (
        0.05,
        9e-5,
        1e-2,
        256,
        5.0,
    )
    assert (p.reward_widths, p.joint_widths, p.dropout) == ((16, 32, 64), (1024, 512), 0.5)
    # sigma scales with s
    assert TrainConfig(reward_scale=8.0).effective_noise_std == pytest.approx(7.0)


def _tiny(n_pairs=40, dim=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    emb = torch.randn(2 * n_pairs, dim, generator=g)
    rewards = emb[:, 0].clone()
    a, b = torch.arange(n_pairs), torch.arange(n_pairs, 2 * n_pairs)
    return PairFeatures(emb, rewards, a, b)


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (
            lambda f: PairFeatures(
                f.embeddings.index_put((torch.tensor([3]),), torch.tensor(float("nan"))),
                f.rewards,
                f.chosen,
                f.rejected,
            ),
            "NaN or infinite embeddings",
        ),
        (
            lambda f: PairFeatures(
                f.embeddings,
                f.rewards.index_put((torch.tensor([5]),), torch.tensor(float("inf"))),
                f.chosen,
                f.rejected,
            ),
            "infinite rewards .*row 5",
        ),
        (
            lambda f: PairFeatures(f.embeddings[:0], f.rewards[:0], f.chosen[:0], f.rejected[:0]),
            "no preference pairs",
        ),
        (
            lambda f: PairFeatures(
                f.embeddings, torch.arange(80.0), torch.arange(40), torch.arange(40, 80)
            ),
            "dropped every one",
        ),
    ],
)
def test_bad_input_errors(mutate, match):
    with pytest.raises(DataFormatError, match=match):
        train_energy_head(mutate(_tiny()), TrainConfig(max_steps=2, **FAST), progress=False)


def test_dimension_mismatch_with_loaded_head():
    from ebrm.energy.scoring import score_features

    result = train_energy_head(_tiny(), TrainConfig(max_steps=2, **FAST), progress=False)
    with pytest.raises(IncompatibleArtifactError, match="dimension 6 .* trained on 4"):
        score_features(result.model, _tiny(dim=6))


def test_training_is_deterministic_and_saves_history(tmp_path):
    cfg = TrainConfig(max_steps=30, **FAST)
    a = train_energy_head(_tiny(), cfg, progress=False)
    b = train_energy_head(_tiny(), cfg, progress=False)
    for (name, x), y in zip(
        a.model.head.state_dict().items(), b.model.head.state_dict().values(), strict=True
    ):
        assert torch.equal(x, y), name
    assert [h["step"] for h in a.history] == [25, 30]
    assert a.history == b.history
    a.save(tmp_path / "m")
    assert json.loads((tmp_path / "m" / "history.json").read_text()) == a.history
    assert (tmp_path / "m" / "training_curve.png").read_bytes()[:4] == b"\x89PNG"
    cfg_json = json.loads((tmp_path / "m" / "config.json").read_text())
    val = cfg_json["train"]["validation"]
    assert cfg_json["refine"]["method"] == val["method"]
    assert {"mean_accuracy", "mode_accuracy", "base_accuracy"} <= set(val)


def test_paper_budget_counts_epochs_over_kept_pairs():
    from ebrm.energy.train import _budget

    cfg = TrainConfig.preset("paper")
    assert _budget(cfg, 1000) == (5 * 8, 8)  # 128 pairs = 256 records per step


def test_an_epoch_budget_too_small_for_the_data_is_warned_about(caplog):
    small = dict(FAST, max_steps=None, eval_every=None, joint_widths=(16, 8))
    with caplog.at_level("WARNING", logger="ebrm.energy.train"):
        result = train_energy_head(_tiny(), TrainConfig(epochs=2.0, **small), progress=False)
    (warning,) = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert f"the budget is {result.model.train_info['steps']} optimiser steps" in warning
    assert "--steps" in warning
    caplog.clear()
    with caplog.at_level("WARNING", logger="ebrm.energy.train"):
        train_energy_head(_tiny(), TrainConfig(max_steps=30, **FAST), progress=False)
    assert not [r for r in caplog.records if r.levelname == "WARNING"]


def test_choose_method_switches_only_when_clearly_better():
    chosen, rejected = torch.arange(40), torch.arange(40, 80)
    mean = torch.cat([torch.ones(40), torch.zeros(40)])
    mode = mean.clone()
    mean[:3] = -1.0  # mean wrong on 3 pairs only: not significant
    assert choose_method(mean, mode, chosen, rejected)["method"] == "mean"
    mean[:20] = -1.0  # wrong on 20 pairs where mode is right: p = 2/2**20
    out = choose_method(mean, mode, chosen, rejected)
    assert out["method"] == "mode" and out["mode_vs_mean_p_value"] == pytest.approx(2 / 2**20)


def test_select_checkpoint_keeps_the_last_unless_an_earlier_is_clearly_better():
    from ebrm.energy.validation import Checkpoint, select_checkpoint

    def ckpt(step, right):
        right = torch.tensor(right, dtype=torch.bool)
        return Checkpoint(float(right.double().mean()), {"step": step}, step, right)

    last = ckpt(2000, [True] * 20 + [False] * 20)
    # earlier checkpoint right on 4 more pairs (and on none the last gets right): p = 2/2**4
    slightly = ckpt(100, [True] * 24 + [False] * 16)
    chosen, p = select_checkpoint(slightly, last)
    assert chosen is last and p == pytest.approx(2 / 2**4)
    # right on 12 more: p = 2/2**12 < 0.05, so the earlier one is kept
    clearly = ckpt(100, [True] * 32 + [False] * 8)
    chosen, p = select_checkpoint(clearly, last)
    assert chosen is clearly and p == pytest.approx(2 / 2**12)
    # the last is also the most accurate: nothing to test
    assert select_checkpoint(last, last) == (last, 1.0)


def test_training_keeps_the_full_budget_head_by_default():
    train = make_synthetic(200, region="ball", seed=0).features
    result = train_energy_head(
        train, TrainConfig(max_steps=60, **{**FAST, "eval_every": 20}), progress=False
    )
    v = result.validation
    assert v["best_step"] in (60, v["most_accurate_step"])
    if v["best_step"] != 60:
        assert v["most_accurate_vs_last_p_value"] < 0.05


def test_learnability_refined_beats_a_base_flipped_on_a_region():
    """Base = truth flipped inside a disc; filter + NCE+ + refinement recover the truth."""
    train = make_synthetic(300, region="ball", seed=0)
    test = make_synthetic(800, region="ball", seed=100).features
    result = train_energy_head(
        train.features, TrainConfig(max_steps=100, **{**FAST, "eval_every": 50}), progress=False
    )
    base = (test.rewards[test.chosen] > test.rewards[test.rejected]).double().mean()
    refined = _refined_accuracy(result.model, test).mean()
    assert result.filter_report.dropped > 0
    assert refined > base + 0.05, (float(base), float(refined))


def test_preference_aware_objective_fixes_more_pairs_than_paper():
    """Base wrong on a half-plane: the BT term (labels of every pair) fixes more pairs."""
    train = make_synthetic(300, region="edge", seed=0)
    test = make_synthetic(800, region="edge", seed=100).features
    base_right = test.rewards[test.chosen] > test.rewards[test.rejected]
    fixed = {}
    for objective in ("nce+", "nce+bt"):
        cfg = TrainConfig(
            objective=objective, max_steps=100, train_grid_size=32, **{**FAST, "eval_every": 50}
        )
        right = _refined_accuracy(
            train_energy_head(train.features, cfg, progress=False).model, test
        ).bool()
        fixed[objective] = int((right & ~base_right).sum())
    assert fixed["nce+bt"] > fixed["nce+"] + 10, fixed


def test_custom_objective_is_pluggable():
    from ebrm.energy import NCEPlusBT

    calls = []

    class Counting(NCEPlusBT):
        def __call__(self, head, batch, *, generator=None):
            calls.append(int(batch.kept.sum()))
            return super().__call__(head, batch, generator=generator)

    custom = Counting(noise_std=1.0, positive_noise_ratio=0.1, num_negatives=4, reg_weight=0.0)
    result = train_energy_head(
        _tiny(), TrainConfig(max_steps=3, **FAST), objective=custom, progress=False
    )
    assert len(calls) == 3 and custom.grid is not None  # the trainer supplied the grid
    assert result.model.train_info["objective"] == "nce+bt"
    with pytest.raises(ConfigError, match="must implement ebrm.energy.Objective"):
        train_energy_head(_tiny(), TrainConfig(max_steps=3, **FAST), objective=len)
