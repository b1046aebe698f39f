"""The trainer: config validation, bad input, determinism, learnability, objectives."""

import json
import math

import pytest
import torch

from ebrm.energy import TrainConfig, train_energy_head
from ebrm.energy.presets import PRESETS
from ebrm.errors import ConfigError, DataFormatError, IncompatibleArtifactError
from ebrm.features.table import PairFeatures
from ebrm.model import EnergyRewardModel
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
    model = EnergyRewardModel.from_training(result)
    with pytest.raises(IncompatibleArtifactError, match="dimension 6 .* trained on 4"):
        score_features(model, _tiny(dim=6))


def test_training_is_deterministic_and_saves_history(tmp_path):
    cfg = TrainConfig(max_steps=30, **FAST)
    a = train_energy_head(_tiny(), cfg, progress=False)
    b = train_energy_head(_tiny(), cfg, progress=False)
    for (name, x), y in zip(a.head.state_dict().items(), b.head.state_dict().values(), strict=True):
        assert torch.equal(x, y), name
    assert [h["step"] for h in a.history] == [25, 30]
    assert a.history == b.history
    EnergyRewardModel.from_training(a).save_pretrained(tmp_path / "m")
    a.save_history(tmp_path / "m")
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
    # (the temperature fit may warn too, from its own logger: such a head is barely trained)
    (warning,) = [
        r.getMessage()
        for r in caplog.records
        if r.levelname == "WARNING" and r.name == "ebrm.energy.train"
    ]
    assert f"the budget is {result.info['steps']} optimiser steps" in warning
    assert "--steps" in warning
    caplog.clear()
    with caplog.at_level("WARNING", logger="ebrm.energy.train"):
        train_energy_head(_tiny(), TrainConfig(max_steps=30, **FAST), progress=False)
    assert not [
        r for r in caplog.records if r.levelname == "WARNING" and r.name == "ebrm.energy.train"
    ]


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
    refined = _refined_accuracy(EnergyRewardModel.from_training(result), test).mean()
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
        result = train_energy_head(train.features, cfg, progress=False)
        right = _refined_accuracy(EnergyRewardModel.from_training(result), test).bool()
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
    assert result.info["objective"] == "nce+bt"
    with pytest.raises(ConfigError, match="must implement ebrm.energy.Objective"):
        train_energy_head(_tiny(), TrainConfig(max_steps=3, **FAST), objective=len)


def _with_prompts(features: PairFeatures, num_prompts: int) -> PairFeatures:
    """The same pairs, pair i asking prompt i % num_prompts (several pairs per prompt)."""
    hashes = [f"prompt-{i % num_prompts}" for i in range(features.num_pairs)]
    return PairFeatures(
        features.embeddings, features.rewards, features.chosen, features.rejected, hashes
    )


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_default_validation_split_never_puts_a_prompt_on_both_sides(seed):
    features = _with_prompts(make_synthetic(120, region="ball", seed=seed).features, 17)
    cfg = TrainConfig(max_steps=2, validation_fraction=0.3, seed=seed, **FAST)
    result = train_energy_head(features, cfg, progress=False)
    val = result.validation_features
    assert val.num_pairs == result.validation["pairs"] >= round(0.3 * 120)
    assert result.info["train_pairs"] + val.num_pairs == 120
    prompts = result.info["prompts"]
    assert not set(prompts["train"]) & set(prompts["validation"])
    assert set(prompts["train"]) | set(prompts["validation"]) == set(features.prompt_hashes)
    assert set(prompts["validation"]) == set(val.prompt_hashes)
    assert result.info["validation_split"].endswith("whole prompts")
    # the validation pairs are features' own pairs: the same embeddings, chosen and rejected
    own = {
        (tuple(features.embeddings[c].tolist()), tuple(features.embeddings[r].tolist()))
        for c, r in zip(features.chosen, features.rejected, strict=True)
    }
    for c, r in zip(val.chosen, val.rejected, strict=True):
        assert (tuple(val.embeddings[c].tolist()), tuple(val.embeddings[r].tolist())) in own


def test_explicit_validation_pairs_are_used_as_given():
    train = _with_prompts(make_synthetic(100, region="ball", seed=0).features, 100)
    val = make_synthetic(30, region="ball", seed=7).features  # another table, no prompts
    cfg = TrainConfig(max_steps=20, validation_fraction=0.5, **{**FAST, "eval_every": 10})
    result = train_energy_head(train, cfg, validation=val, progress=False)
    assert result.info["train_pairs"] == 100  # validation_fraction is not applied
    assert result.validation["pairs"] == 30 and result.info["validation_split"] == "given"
    base = sum(
        float(val.rewards[c] > val.rewards[r])
        for c, r in zip(val.chosen, val.rejected, strict=True)
    )
    assert result.validation["base_accuracy"] == pytest.approx(base / 30)
    assert [h["val_accuracy_base"] for h in result.history] == [pytest.approx(base / 30)] * 2
    assert result.info["prompts"]["validation"] == []  # the given pairs record no prompts
    assert len(result.info["prompts"]["train"]) == 100
    with pytest.raises(IncompatibleArtifactError, match="validation features have embedding"):
        train_energy_head(train, cfg, validation=_tiny(dim=5), progress=False)


def test_from_training_chooses_method_and_temperature_on_the_validation_pairs():
    """The choice the trainer used to make, recomputed here from its definition."""
    from ebrm.refine import grid_posterior, p_better
    from ebrm.refine.calibration import fit_temperature

    features = make_synthetic(300, region="ball", seed=0).features
    cfg = TrainConfig(max_steps=200, validation_fraction=0.3, **{**FAST, "eval_every": 20})
    result = train_energy_head(features, cfg, progress=False)
    model = EnergyRewardModel.from_training(result, base_rm_info={"name_or_path": "x"})
    val = result.validation_features
    # grid: the normalised training rewards plus one std (at least 1) on each side
    train, _ = features.split(validation_fraction=0.3, seed=0)  # tested in features/
    rows = torch.unique(torch.cat([train.chosen, train.rejected]))
    y_train = result.normalizer.transform(features.rewards[rows].double())
    margin = max(float(y_train.std(unbiased=False)), 1.0)
    cfg_r = model.refine_config
    assert cfg_r.grid_min == pytest.approx(float(y_train.min()) - margin, abs=1e-6)
    assert cfg_r.grid_max == pytest.approx(float(y_train.max()) + margin, abs=1e-6)
    # method: the mean unless the mode is more accurate with McNemar p < 0.05
    post = grid_posterior(model.head, val.embeddings, grid=cfg_r.grid())
    right_mean = [
        bool(post.mean[c] > post.mean[r]) for c, r in zip(val.chosen, val.rejected, strict=True)
    ]
    right_mode = [
        bool(post.mode[c] > post.mode[r]) for c, r in zip(val.chosen, val.rejected, strict=True)
    ]
    b = sum(m and not a for a, m in zip(right_mean, right_mode, strict=True))
    c = sum(a and not m for a, m in zip(right_mean, right_mode, strict=True))
    from scipy.stats import binomtest

    p = binomtest(b, b + c, 0.5).pvalue if b + c else 1.0
    mode_better = sum(right_mode) > sum(right_mean) and p < 0.05
    v = model.train_info["validation"]
    assert v["method"] == cfg_r.method == ("mode" if mode_better else "mean")
    assert v["mean_accuracy"] == pytest.approx(sum(right_mean) / len(right_mean))
    assert v["mode_accuracy"] == pytest.approx(sum(right_mode) / len(right_mode))
    assert v["mode_vs_mean_p_value"] == pytest.approx(p)
    # temperature: fitted on P(chosen > rejected) of the validation pairs
    p_val = p_better(
        model.head, val.embeddings[val.chosen], val.embeddings[val.rejected], grid=cfg_r.grid()
    )
    assert cfg_r.p_better_temperature == pytest.approx(fit_temperature(p_val), rel=1e-6)
    assert v["p_better_temperature"] == cfg_r.p_better_temperature != 1.0
    # the trainer's checkpoint numbers are kept, and the model records its provenance
    assert {k: v[k] for k in result.validation} == result.validation
    assert model.base_rm_info == {"name_or_path": "x"}
    assert model.train_info["steps"] == result.info["steps"] == 200


def test_without_validation_pairs_the_model_keeps_the_defaults():
    cfg = TrainConfig(max_steps=5, validation_fraction=0.0, **FAST)
    result = train_energy_head(_tiny(), cfg, progress=False)
    assert result.validation_features is None and result.validation["pairs"] == 0
    model = EnergyRewardModel.from_training(result)
    assert (model.refine_config.method, model.refine_config.p_better_temperature) == ("mean", 1.0)


def _trained(features, validation=None, **overrides):
    config = TrainConfig(**{**FAST, "max_steps": 30, "eval_every": 10, "seed": 3, **overrides})
    return train_energy_head(features, config, validation=validation, progress=False)


def _same_training(a, b) -> None:
    """Bit-equal heads, histories, normalisers and grids."""
    sa, sb = a.head.state_dict(), b.head.state_dict()
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
    assert a.history == b.history and a.reward_range == b.reward_range
    assert (a.normalizer.mean_, a.normalizer.std_) == (b.normalizer.mean_, b.normalizer.std_)
    assert a.validation == b.validation and a.filter_report == b.filter_report


@pytest.mark.parametrize("storage_dtype", ["float16", "float32"])
def test_training_on_memory_mapped_rows_equals_training_in_memory(tmp_path, storage_dtype):
    from ebrm.features import extract_features
    from ebrm.features.mapped import MappedRows
    from tests.fakes import FakeRM, make_pairs

    store = extract_features(
        FakeRM(dim=8), make_pairs(60, duplicates=False), tmp_path / "s", shard_size=16,
        storage_dtype=storage_dtype, progress=False,
    )  # fmt: skip
    mapped, in_memory = store.load(memory_map=True), store.load()
    a, b = _trained(mapped), _trained(in_memory)
    _same_training(a, b)
    # the training pairs keep the store's rows (an index set), not a copy of them
    assert a.train_features.embeddings is mapped.embeddings
    assert isinstance(a.validation_features.embeddings, torch.Tensor)
    assert isinstance(mapped.embeddings, MappedRows)


def test_rows_no_training_pair_uses_do_not_change_training():
    # what training saw when it copied the rows of its pairs (compact) before: the normaliser
    # and the grid are fitted on the rows the training pairs use, not on the whole table
    features = make_synthetic(120, dim=6, seed=5).features
    train, val = features.split(validation_fraction=0.25, seed=0)
    a = _trained(train, validation=val)
    b = _trained(train.compact(), validation=val)
    _same_training(a, b)


def test_large_data_preset_is_epochs_of_the_papers_batch():
    large, paper = PRESETS["large-data"], PRESETS["paper"]
    assert large.batch_size == paper.batch_size and large.max_steps is None
    assert large.epochs >= 1  # every kept pair at least once, whatever the data size
    # the budget follows the data: 1M kept pairs at 128 pairs a step, 2 passes
    from ebrm.energy.train import _budget

    assert _budget(large, 1_000_000) == (2 * math.ceil(1_000_000 / 128), math.ceil(1e6 / 128))


def test_a_budget_under_one_epoch_warns_once(caplog):
    features = make_synthetic(200, dim=6, seed=1).features
    with caplog.at_level("WARNING", logger="ebrm.energy.train"):
        _trained(features, max_steps=3)  # 3 steps x 32 pairs < the ~80 kept training pairs
    lines = [r.getMessage() for r in caplog.records if "less than one epoch" in r.getMessage()]
    assert len(lines) == 1 and "large-data" in lines[0] and "\n" not in lines[0]
    caplog.clear()
    with caplog.at_level("WARNING", logger="ebrm.energy.train"):
        _trained(features, max_steps=30)
    assert not [r for r in caplog.records if "less than one epoch" in r.getMessage()]
