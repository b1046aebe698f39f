"""The default recipe: gold, proxy and EBRM on one frozen encoder's feature store.

1. every response of the pairs is embedded once with the frozen encoder (a feature store
   under `out/features/pairs`);
2. **gold** = a Bradley-Terry linear head (`ebrm.rm.bt_head.fit_bt_head`) on *all* pairs with
   clean labels;
3. **proxy** = a BT head on the proxy share of the pairs with `label_noise` of its labels
   flipped (seeded): a weaker, noisy-label RM;
4. **EBRM** = an energy head (`small-data` preset) on the proxy's features of its own
   (noisy-label) pairs.

Gold and proxy are saved as ordinary HF reward-model directories (the encoder plus the
head), so they can be passed back as `--gold` / `--proxy`. A model is reused when the
recipe that made it (the store's plan hash, the encoder's weights hash and the settings)
is unchanged.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from ebrm._io import atomic_write_json
from ebrm.data.types import PreferencePair
from ebrm.features import FeatureStore, PairFeatures, extract_features
from ebrm.overopt.config import OveroptConfig
from ebrm.rm.bt_head import fit_bt_head

RECIPE_FILE = "overopt_recipe.json"  # in each trained model dir: the inputs it was made from
_SETTINGS = ("seed", "proxy_fraction", "label_noise", "max_length", "gold_finetune",
             "head_epochs", "head_weight_decay")  # fmt: skip


@dataclass(frozen=True)
class RecipeModels:
    """The default recipe's gold and proxy RM directories and their heads."""

    gold: Path
    proxy: Path
    gold_weight: torch.Tensor | None  # (D,) None when the gold RM was fine-tuned
    proxy_weight: torch.Tensor  # (D,)


def recipe_record(store: FeatureStore, config: OveroptConfig, **extra) -> dict:
    """What a recipe model depends on: the pair store's plan and RM hashes and settings."""
    return {
        "plan_hash": store.manifest["plan_hash"],
        "encoder_weights_hash": store.provenance["weights_hash"],
        "settings": {name: getattr(config, name) for name in _SETTINGS},
        **extra,
    }


def reusable(directory: Path, record: dict) -> bool:
    """Whether `directory` was made by this exact recipe."""
    try:
        return json.loads((directory / RECIPE_FILE).read_text())["recipe"] == record
    except (OSError, ValueError, KeyError, TypeError):
        return False


def mark(directory: Path, record: dict) -> None:
    atomic_write_json(directory / RECIPE_FILE, {"recipe": record})


def noisy_labels(features: PairFeatures, rows: torch.Tensor, flipped: Sequence[int]):
    """(chosen, rejected) row indices of pairs `rows` with the `flipped` ones swapped."""
    chosen, rejected = features.chosen[rows].clone(), features.rejected[rows].clone()
    flipped = torch.as_tensor(list(flipped), dtype=torch.long)
    chosen[flipped], rejected[flipped] = rejected[flipped], chosen[flipped].clone()
    return chosen, rejected


def pair_features(encoder_rm, pairs, out: Path, config: OveroptConfig):
    """The encoder's feature store of every pair (reused when unchanged)."""
    store = extract_features(encoder_rm, pairs, out / "features" / "pairs",
                             batch_size=config.batch_size, progress=config.progress)  # fmt: skip
    return store, store.load()


def save_head_rm(encoder: str, weight: torch.Tensor, out: Path, *, record: dict, max_length: int):
    """Write an HF sequence-classification directory: `encoder` + this linear score head."""
    from ebrm.rm.train_bt import BTTrainConfig, load_trainable_rm

    rm = load_trainable_rm(encoder, BTTrainConfig(max_length=max_length, device="cpu"))
    with torch.no_grad():
        rm.head.weight.copy_(weight.reshape_as(rm.head.weight))
        if rm.head.bias is not None:
            rm.head.bias.zero_()
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    rm.model.save_pretrained(out)
    rm.tokenizer.save_pretrained(out)
    atomic_write_json(out / "ebrm_base_rm.json", record)
    return out


def _head_fit(config: OveroptConfig) -> dict:
    return {"epochs": config.head_epochs, "weight_decay": config.head_weight_decay,
            "seed": config.seed}  # fmt: skip


def train_recipe_rms(
    pairs: Sequence[PreferencePair],
    proxy_rows: torch.Tensor,
    features: PairFeatures,
    record: dict,
    encoder: str,
    out: Path,
    config: OveroptConfig,
    say: Callable[[str, str], None],
) -> RecipeModels:
    """Gold and proxy heads on the pair features; saved (or reused) under out/models."""
    from ebrm.rm.train_bt import BTTrainConfig, flip_labels, train_bradley_terry

    gold_dir, proxy_dir = out / "models" / "gold", out / "models" / "proxy"
    emb, n = features.embeddings, features.num_pairs
    ec, er = emb[features.chosen], emb[features.rejected]
    gold_weight = None
    if config.gold_finetune:
        if not reusable(gold_dir, record):
            say("train", f"fine-tuning the gold RM on all {n} pairs (TRL RewardTrainer)")
            shutil.rmtree(gold_dir, ignore_errors=True)
            train_bradley_terry(encoder, list(pairs), gold_dir, config=BTTrainConfig(
                validation_fraction=0.0, max_length=config.max_length, seed=config.seed,
                device=config.device, progress=config.progress))  # fmt: skip
    else:
        gold_weight = fit_bt_head(ec, er, **_head_fit(config)).weight
        acc = float(((ec - er) @ gold_weight > 0).float().mean())
        say("train", f"gold: BT head on all {n} clean pairs, train accuracy {acc:.3f}")
        if not reusable(gold_dir, record):
            save_head_rm(encoder, gold_weight, gold_dir, max_length=config.max_length, record={
                "role": "gold", "encoder": encoder, "frozen_encoder": True, "pairs": n,
                "label_noise": 0.0, "train_accuracy": acc})  # fmt: skip
    mark(gold_dir, record)
    proxy_pairs = [pairs[i] for i in proxy_rows.tolist()]
    _, flipped = flip_labels(proxy_pairs, config.label_noise, seed=config.seed)
    noisy_c, noisy_r = noisy_labels(features, proxy_rows, flipped)
    proxy_weight = fit_bt_head(emb[noisy_c], emb[noisy_r], **_head_fit(config)).weight
    clean = (ec[proxy_rows] - er[proxy_rows]) @ proxy_weight
    acc_clean = float((clean > 0).float().mean())
    say("train", f"proxy: BT head on {len(proxy_rows)} pairs, {len(flipped)} labels flipped, "
        f"clean-label train accuracy {acc_clean:.3f}")  # fmt: skip
    if not reusable(proxy_dir, record):
        save_head_rm(encoder, proxy_weight, proxy_dir, max_length=config.max_length, record={
            "role": "proxy", "encoder": encoder, "frozen_encoder": True,
            "pairs": len(proxy_rows), "label_noise": config.label_noise,
            "flipped": len(flipped), "train_accuracy_clean": acc_clean})  # fmt: skip
        mark(proxy_dir, record)
    return RecipeModels(gold_dir, proxy_dir, gold_weight, proxy_weight)


def train_recipe_ebrm(
    proxy_rm,
    proxy_rows: torch.Tensor,
    pairs: Sequence[PreferencePair],
    features: PairFeatures,
    record: dict,
    out: Path,
    config: OveroptConfig,
    say: Callable[[str, str], None],
) -> Path:
    """The energy head on the proxy's rewards of its own (noisy-label) training pairs."""
    from ebrm.energy import TrainConfig, train_energy_head
    from ebrm.model import EnergyRewardModel
    from ebrm.rm.train_bt import flip_labels

    ebrm_dir = out / "models" / "ebrm"
    # The whole step budget, no checkpoint selection: the only validation labels here are
    # the proxy's noisy ones, and selecting on ~90 of them picked an untrained early head
    # (best step 50 of 1000, posterior means uncorrelated with the base) in our first run.
    train_config = TrainConfig.preset(
        "small-data", seed=config.seed, device=config.device, validation_fraction=0.0
    )
    record = {**record, "proxy_weights_hash": proxy_rm.weights_hash,
              "energy": train_config.to_dict()}  # fmt: skip
    if reusable(ebrm_dir, record):
        say("ebrm", f"reusing the energy head in {ebrm_dir}")
        return ebrm_dir
    shutil.rmtree(ebrm_dir, ignore_errors=True)
    proxy_pairs = [pairs[i] for i in proxy_rows.tolist()]
    _, flipped = flip_labels(proxy_pairs, config.label_noise, seed=config.seed)
    chosen, rejected = noisy_labels(features, proxy_rows, flipped)
    rewards = proxy_rm.head_reward(features.embeddings)
    train = PairFeatures(features.embeddings, rewards, chosen, rejected)
    say("ebrm", f"training the energy head on {len(proxy_rows)} proxy pairs (small-data preset)")
    result = train_energy_head(train, train_config, progress=config.progress)
    model = EnergyRewardModel.from_training(result, base_rm_info=proxy_rm.provenance())
    model.save_pretrained(ebrm_dir)
    result.save_history(ebrm_dir)
    mark(ebrm_dir, record)
    say("ebrm", f"validation {model.train_info['validation']}; filter kept "
        f"{result.filter_report.kept}/{result.filter_report.total}")  # fmt: skip
    return ebrm_dir
