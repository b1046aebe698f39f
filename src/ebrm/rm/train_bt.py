"""`ebrm base-rm train`: a Bradley-Terry reward model from any HF model directory.

Two modes:

* full fine-tuning with TRL's `RewardTrainer` (loss `-log sigmoid(r_chosen - r_rejected)`),
  fed token ids that `BaseRewardModel` produced, so training sees exactly the texts,
  template and truncation that scoring will see later;
* `freeze_encoder=True`: only the score head is trained. The head's input is then a fixed
  function of the text, so we embed every text once with `BaseRewardModel` and fit the
  Linear head on those features with a short BT loop. TRL is not used here because it
  would run the frozen encoder forward on every step of every epoch (~epochs x slower on
  CPU) for the identical result.

The result is an ordinary HF directory (`save_pretrained` + tokenizer) plus
`ebrm_base_rm.json` recording data, seed, label noise and accuracies.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import torch

from ebrm._io import atomic_write_json, swap_directory
from ebrm.data.types import PreferencePair
from ebrm.errors import ConfigError, DataFormatError
from ebrm.rm.adapter import BaseRewardModel
from ebrm.rm.bt_config import BTTrainConfig
from ebrm.rm.bt_head import fit_bt_head
from ebrm.rm.label_noise import flip_labels
from ebrm.rm.names import REPORT_NAME
from ebrm.rm.padding import setup_pad_token

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class BTTrainResult:
    """What `train_bradley_terry` produced."""

    out: Path  # the saved HF model directory
    train_accuracy: float  # on the training labels as trained (flipped ones included)
    train_accuracy_clean: float  # on the training pairs' original labels
    validation_accuracy: float | None  # on the untouched validation pairs (None if none)
    num_train: int
    num_validation: int
    num_flipped: int
    seconds: float


def load_trainable_rm(model_path: str | Path, config: BTTrainConfig) -> BaseRewardModel:
    """Any HF model directory as a 1-output sequence-classification model, ready to train."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    torch.manual_seed(config.seed)  # the new score head is initialised from this seed
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(model_path))
        model = AutoModelForSequenceClassification.from_pretrained(
            str(model_path), num_labels=1, ignore_mismatched_sizes=True
        )
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"Could not load a model to train from {str(model_path)!r}: {exc}"
        ) from exc
    from ebrm._device import resolve_device

    model.to(resolve_device(config.device))
    local = Path(model_path)
    name = str(local.resolve()) if local.is_dir() else str(model_path)
    # Give the config its pad id first: training pools by it, the saved config keeps it, so
    # the trained RM is pooled (and embedded here) as it will be when loaded again.
    setup_pad_token(model, tokenizer, name)
    return BaseRewardModel(
        model, tokenizer, name_or_path=name, max_length=config.max_length, padding_side="right"
    )


def _pair_ids(rm: BaseRewardModel, pairs: list[PreferencePair]):
    chosen = rm.tokenize([rm.format(p.chosen) for p in pairs])
    rejected = rm.tokenize([rm.format(p.rejected) for p in pairs])
    return chosen, rejected


def _accuracy(margin: torch.Tensor) -> float:
    """Fraction of margins r_chosen - r_rejected > 0 (strict: ties count as wrong)."""
    return float((margin > 0).float().mean()) if len(margin) else float("nan")


def _train_head(
    rm: BaseRewardModel, feats: tuple[torch.Tensor, torch.Tensor], config: BTTrainConfig
) -> None:
    """Fit the Linear score head on fixed features with the BT loss (in place)."""
    head = rm.head
    # The bias cancels in r_chosen - r_rejected, so BT cannot learn it: keep the init.
    fit = fit_bt_head(
        *feats,  # (P, D) chosen and rejected
        seed=config.seed,
        epochs=config.resolved_epochs,
        learning_rate=config.resolved_learning_rate,
        weight_decay=config.weight_decay,
        batch_size=config.batch_size,
        init=head.weight.detach().float().cpu()[0],
        progress=config.progress,
    )
    with torch.no_grad():
        head.weight.copy_(fit.weight[None].to(head.weight.dtype))


def _train_full(rm: BaseRewardModel, ids: tuple[list, list], config: BTTrainConfig) -> None:
    """Fine-tune the whole model with TRL's RewardTrainer on pre-tokenised pairs."""
    from datasets import Dataset

    from ebrm.errors import require

    trl = require("trl", "trl")
    chosen_ids, rejected_ids = ids
    dataset = Dataset.from_dict({"chosen_ids": chosen_ids, "rejected_ids": rejected_ids})
    with tempfile.TemporaryDirectory(prefix="ebrm-bt-") as scratch:
        args = trl.RewardConfig(
            output_dir=scratch,
            num_train_epochs=config.resolved_epochs,
            per_device_train_batch_size=config.batch_size,
            learning_rate=config.resolved_learning_rate,
            weight_decay=config.weight_decay,
            seed=config.seed,
            data_seed=config.seed,
            max_length=None,  # already truncated by BaseRewardModel (TRL would drop, not cut)
            bf16=False,
            fp16=False,
            **_no_checkpointing(trl.RewardConfig),
            use_cpu=rm.device.type == "cpu",
            save_strategy="no",
            eval_strategy="no",
            report_to="none",
            logging_steps=10,
            disable_tqdm=not config.progress,
            dataloader_num_workers=0,
        )
        trainer = trl.RewardTrainer(
            model=rm.model, args=args, train_dataset=dataset, processing_class=rm.tokenizer
        )
        trainer.train()
    rm.model.eval()


def _no_checkpointing(config_class) -> dict:
    """Activation checkpointing off (it costs CPU time); renamed in transformers 5."""
    names = {f.name for f in dataclasses.fields(config_class)}
    if "activation_checkpointing" in names:
        return {"activation_checkpointing": False}
    return {"gradient_checkpointing": False}


EmbedPairs = Callable[[BaseRewardModel, list[PreferencePair]], tuple[torch.Tensor, torch.Tensor]]


def embed_pair_texts(
    rm: BaseRewardModel, pairs: list[PreferencePair], *, batch_size: int, progress: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """(P, D) embeddings of every pair's chosen and of its rejected response."""
    chosen, rejected = _pair_ids(rm, pairs)
    emb, _ = rm.embed_token_ids(chosen + rejected, batch_size=batch_size, progress=progress)
    return emb[: len(pairs)], emb[len(pairs) :]


def _split_indices(pairs: list[PreferencePair], config: BTTrainConfig) -> tuple[list, list]:
    """(training, validation) pair indices: `split_pairs` by prompt, seeded."""
    from ebrm.data import split_pairs

    tagged = [dataclasses.replace(p, id=str(i)) for i, p in enumerate(pairs)]  # id: its index
    train, validation, _ = split_pairs(
        tagged, test_fraction=0.0, validation_fraction=config.validation_fraction, seed=config.seed
    )
    return [int(p.id) for p in train], [int(p.id) for p in validation]


def train_bradley_terry(
    model_path: str | Path,
    pairs: list[PreferencePair],
    out: str | Path,
    *,
    config: BTTrainConfig | None = None,
    data_spec: str | None = None,
    embed_pairs: EmbedPairs | None = None,
    overwrite: bool = False,
    before_publish: Callable[[Path], None] | None = None,
) -> BTTrainResult:
    """Train a Bradley-Terry reward model and save it as an HF directory.

    Args:
        model_path: HF model directory or hub id (encoder or decoder LM).
        pairs: preference pairs; a seeded, prompt-grouped validation split is held out.
        out: output directory; must not exist or be empty, unless `overwrite`.
        config: training options.
        data_spec: where the pairs came from (recorded in `ebrm_base_rm.json`).
        embed_pairs: `(rm, pairs) -> ((P, D) chosen, (P, D) rejected)` embeddings of all
            `pairs` (labels as given), called once: before fitting the head with a frozen
            encoder, after fine-tuning otherwise (the accuracies are computed from them).
            Default `embed_pair_texts`; `ebrm.pipeline.base_rm` passes one that extracts a
            feature store.
        overwrite: replace a non-empty `out`; the previous directory stays intact until
            the new one is complete, then one rename swaps them (`ebrm._io.swap_directory`).
        before_publish: called with the staged output directory once the RM is saved in it
            (and stands for `out`, `BaseRewardModel.saved_as`), before it becomes `out`:
            whatever it adds there appears together with the model.

    Returns:
        A `BTTrainResult` with accuracies (strict >) and counts.

    Raises:
        ConfigError: bad options, unloadable model, or a non-empty `out` (unless
            `overwrite`).
        DataFormatError: no pairs.
    """
    config = config or BTTrainConfig()
    out = Path(out)
    if out.exists() and (not out.is_dir() or (not overwrite and any(out.iterdir()))):
        raise ConfigError(f"--out {out} exists and is not empty; choose a new directory.")
    if not pairs:
        raise DataFormatError("No preference pairs to train on; check --data.")
    started = time.perf_counter()
    train_index, val_index = _split_indices(pairs, config)
    noisy, flipped = flip_labels(
        [pairs[i] for i in train_index], config.label_noise, seed=config.seed
    )
    logger.info(
        "%d training pairs (%d labels flipped), %d validation pairs",
        len(noisy),
        len(flipped),
        len(val_index),
    )
    rm = load_trainable_rm(model_path, config)
    if embed_pairs is None:
        embed_pairs = partial(
            embed_pair_texts, batch_size=config.batch_size, progress=config.progress
        )
    train = torch.tensor(train_index, dtype=torch.long)
    is_flipped = torch.zeros(len(train_index), dtype=torch.bool)
    is_flipped[flipped] = True
    if config.freeze_encoder:
        e_chosen, e_rejected = embed_pairs(rm, list(pairs))  # (P, D) each, labels as given
        # the training labels as trained: flipped pairs swap their sides
        flip = is_flipped[:, None]
        c, r = e_chosen[train], e_rejected[train]
        _train_head(rm, (torch.where(flip, r, c), torch.where(flip, c, r)), config)
    else:
        _train_full(rm, _pair_ids(rm, noisy), config)
        e_chosen, e_rejected = embed_pairs(rm, list(pairs))
    margin = rm.head_reward(e_chosen) - rm.head_reward(e_rejected)  # (P,) on the given labels
    clean_margin = margin[train]
    val_margin = margin[torch.tensor(val_index, dtype=torch.long)]
    result = BTTrainResult(
        out=out,
        train_accuracy=_accuracy(torch.where(is_flipped, -clean_margin, clean_margin)),
        train_accuracy_clean=_accuracy(clean_margin),
        validation_accuracy=_accuracy(val_margin) if val_index else None,
        num_train=len(train_index),
        num_validation=len(val_index),
        num_flipped=len(flipped),
        seconds=time.perf_counter() - started,
    )
    _save(
        rm, out, config, result, model_path=str(model_path), data_spec=data_spec,
        before_publish=before_publish,
    )  # fmt: skip
    return result


def _save(
    rm: BaseRewardModel,
    out: Path,
    config: BTTrainConfig,
    result: BTTrainResult,
    *,
    model_path: str,
    data_spec: str | None,
    before_publish: Callable[[Path], None] | None = None,
) -> None:
    """Write the HF directory beside `out`, then move it into place in one rename (a
    previous `out` is swapped out only then)."""
    from ebrm._version import version_info

    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        rm.model.save_pretrained(staging)
        rm.tokenizer.save_pretrained(staging)
        report = {
            "base_model": model_path,
            "data": data_spec,
            "trainer": "bt-head-loop" if config.freeze_encoder else "trl.RewardTrainer",
            "config": {
                **{k: v for k, v in dataclasses.asdict(config).items() if k != "progress"},
                "epochs": config.resolved_epochs,
                "learning_rate": config.resolved_learning_rate,
            },
            "num_train": result.num_train,
            "num_validation": result.num_validation,
            "num_flipped": result.num_flipped,
            "train_accuracy": result.train_accuracy,
            "train_accuracy_clean": result.train_accuracy_clean,
            "validation_accuracy": result.validation_accuracy,
            "seconds": round(result.seconds, 2),
            "versions": version_info(),
        }
        atomic_write_json(staging / REPORT_NAME, report)
        rm.saved_as(out, files_at=staging)
        if before_publish is not None:
            before_publish(staging)
        swap_directory(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    logger.info("saved Bradley-Terry RM to %s", out)
