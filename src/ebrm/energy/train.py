"""Training the energy head on stored features: one readable loop (DESIGN §1.2-1.5).

seed -> split (grouped by prompt, or the validation pairs given) -> normalise -> filter
-> head + objective -> AdamW loop with validation evals -> keep the last checkpoint unless
an earlier one is clearly better on validation -> `TrainResult`.

The trainer trains and reports; it does not choose how to refine or build the model. That
is the next stage's job: `EnergyRewardModel.from_training(result)` chooses the refined-reward
method and fits the `p_better` temperature on the same validation pairs (`ebrm.refine`).
"""

from __future__ import annotations

import copy
import logging
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import torch

from ebrm._device import resolve_device
from ebrm._progress import tqdm
from ebrm.energy.config import EnergyHeadConfig, TrainConfig
from ebrm.energy.filter import FilterReport, filter_conflicts
from ebrm.energy.head import EnergyHead
from ebrm.energy.history import save_history
from ebrm.energy.normalize import RewardNormalizer
from ebrm.energy.objectives import Objective, PairBatch, make_objective
from ebrm.energy.posterior import grid_range, grid_summaries
from ebrm.energy.validation import Checkpoint, check_features, pairwise_accuracy, select_checkpoint
from ebrm.errors import ConfigError, DataFormatError
from ebrm.features.table import PairFeatures

logger = logging.getLogger(__name__)

# DESIGN §1.5, measured: on ~1k kept HH-RLHF pairs the head needs about 600 optimiser steps
# to leave its initialisation; the paper's 5 epochs are ~40 there.
FEW_STEPS = 600
# Points of the grid validation pairs are scored on (RefineConfig's default grid size).
EVAL_GRID_SIZE = 128
PROMPT_HASH_NOTE = "ebrm.data.prompt_hash: sha256 of the chosen side's turns, 16 hex chars"


@dataclass
class TrainResult:
    """What `train_energy_head` returns: the trained head and what training measured.

    Build a refined model from it with `ebrm.model.EnergyRewardModel.from_training(result)`.
    """

    head: EnergyHead  # at the selected checkpoint, in eval mode, on the CPU
    normalizer: RewardNormalizer  # fitted on the training responses' raw rewards
    history: list[dict]  # one entry per validation eval: step, train loss (+parts), accuracies
    filter_report: FilterReport
    validation: dict  # checkpoint selection: pairs, best_step, base_accuracy, ...
    info: dict  # what the model records as its training (config, objective, prompts, ...)
    reward_range: tuple[float, float]  # grid range over the normalised training rewards
    validation_features: PairFeatures | None = None  # the pairs validated on (None: none)
    # the pairs trained on, before the filter; their rows are the input's (not copied)
    train_features: PairFeatures | None = None
    config: TrainConfig = field(default_factory=TrainConfig)

    def save_history(self, out_dir) -> None:
        """Write `history.json` and `training_curve.png` (the chosen checkpoint marked)."""
        save_history(
            self.history, out_dir, chosen_step=self.validation.get("best_step"),
            train_pairs=self.info.get("train_pairs"), validation_pairs=self.validation.get("pairs"),
        )  # fmt: skip


def train_energy_head(
    features: PairFeatures,
    config: TrainConfig | None = None,
    *,
    validation: PairFeatures | None = None,
    objective: Objective | None = None,
    progress: bool = True,
) -> TrainResult:
    """Train an energy head with NCE+ (or a preference-aware objective) on stored features.

    Args:
        features: embeddings and raw base rewards of the responses, and the pairs. The
            embeddings may be memory-mapped (`FeatureStore.load(memory_map=True)`): steps
            read their mini-batch rows by index, so the table is never copied.
        config: training settings (default: the `small-data` preset).
        validation: the pairs to select the checkpoint on (then all of `features` trains).
            None: hold out `config.validation_fraction` of `features`, grouped by prompt
            (`PairFeatures.split`), so no prompt is on both sides.
        objective: a custom `Objective` instead of `config.objective`; if it has a `grid`
            attribute that is None, the trainer sets it to the training reward grid.
        progress: show a tqdm progress bar.

    Returns:
        TrainResult with the head at the selected checkpoint (`select_checkpoint`).

    Raises:
        DataFormatError: empty data, NaN/inf values, or every pair filtered out.
        IncompatibleArtifactError: validation features of another embedding width.
    """
    config = config or TrainConfig()
    check_features(features)
    train, val = _split(features, validation, config)
    device = resolve_device(config.device)
    rng_devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=rng_devices):
        torch.manual_seed(config.seed)  # head init and dropout; restored on exit
        result = _train(train, val, config, device, objective, progress)
    if validation is not None:
        result.info["validation_split"] = "given"
    elif features.prompt_hashes is None:
        result.info["validation_split"] = "validation_fraction of the pairs, by pair"
    else:
        result.info["validation_split"] = "validation_fraction of the pairs, whole prompts"
    return result


def _split(
    features: PairFeatures, validation: PairFeatures | None, config: TrainConfig
) -> tuple[PairFeatures, PairFeatures]:
    """(train, validation) pairs: the training pairs an index set into `features`' rows
    (no copy), the validation pairs compacted to the rows they use (a tensor)."""
    if validation is not None:
        if validation.num_pairs:
            check_features(validation)
        if validation.dim != features.dim:
            from ebrm.errors import IncompatibleArtifactError

            raise IncompatibleArtifactError(
                f"the validation features have embedding dimension {validation.dim} but the "
                f"training features {features.dim}; extract both with the same base RM"
            )
        return features, validation.compact()
    if features.prompt_hashes is None and config.validation_fraction > 0:
        logger.info("the features record no prompt hashes: validation is split by pair")
    train, val = features.split(validation_fraction=config.validation_fraction, seed=config.seed)
    if train.num_pairs == 0:
        raise DataFormatError(
            f"no training pairs left after holding out {config.validation_fraction:.0%} of "
            f"{features.num_pairs} pairs (whole prompts) for validation; provide more pairs, "
            "lower the fraction, or pass validation pairs explicitly"
        )
    return train, val.compact()


def _filter(train: PairFeatures, config: TrainConfig) -> tuple[torch.Tensor, FilterReport]:
    """Which training pairs the base RM already ranks right (all, without the filter)."""
    if config.filter_conflicts:
        kept, report = filter_conflicts(train.rewards[train.chosen], train.rewards[train.rejected])
    else:
        kept = torch.ones(train.num_pairs, dtype=torch.bool)
        report = FilterReport(train.num_pairs, train.num_pairs, 0, 0)
    logger.info("conflict filter: %s", report)
    if report.kept == 0:
        raise DataFormatError(
            f"the conflict filter dropped every one of the {report.total} training pairs "
            f"(the base RM never scores chosen above rejected; {report.ties} ties). Check that "
            "chosen and rejected are not swapped, or train with --no-filter"
        )
    return kept, report


def _objective(config: TrainConfig, objective: Objective | None, grid: torch.Tensor) -> Objective:
    """`objective` (given a grid if it wants one) or the one `config.objective` names."""
    if objective is None:
        return make_objective(
            config.objective,
            noise_std=config.effective_noise_std,
            positive_noise_ratio=config.positive_noise_ratio,
            num_negatives=config.num_negatives,
            reg_weight=config.reg_weight,
            bt_weight=config.bt_weight,
            margin=config.margin,
            grid=grid,
        )
    if not isinstance(objective, Objective):
        raise ConfigError(
            f"objective must implement ebrm.energy.Objective (name, uses_dropped_pairs, "
            f"__call__(head, batch, *, generator)); got {type(objective).__name__}"
        )
    if getattr(objective, "grid", False) is None:
        objective.grid = grid
    return objective


def _budget(config: TrainConfig, num_train_pairs: int) -> tuple[int, int]:
    """(total optimiser steps, steps per epoch over the training pairs)."""
    pairs_per_step = max(config.batch_size // 2, 1)
    per_epoch = max(math.ceil(num_train_pairs / pairs_per_step), 1)
    if config.max_steps is not None:
        return config.max_steps, per_epoch
    return max(int(round(config.epochs * per_epoch)), 1), per_epoch


def _warn_small_budget(config: TrainConfig, total_steps: int, num_pairs: int) -> None:
    if config.max_steps is None and total_steps < FEW_STEPS:
        logger.warning(
            "the budget is %d optimiser steps (%g epochs of %d training pairs, %d pairs a step): "
            "on data this small the energy head barely leaves its initialisation (about %d+ "
            "steps are needed). Set a step budget (ebrm train --steps N, TrainConfig.max_steps) "
            "or use the default preset.",
            total_steps,
            config.epochs,
            num_pairs,
            max(config.batch_size // 2, 1),
            FEW_STEPS,
        )


def _warn_under_one_epoch(
    config: TrainConfig, total_steps: int, per_epoch: int, num_pairs: int
) -> None:
    if total_steps < per_epoch:
        pairs_per_step = max(config.batch_size // 2, 1)
        logger.warning(
            "the budget of %d steps x %d pairs sees %.0f%% of the %d training pairs (less than "
            "one epoch); for data this large use --preset large-data or raise --steps",
            total_steps, pairs_per_step, 100 * total_steps * pairs_per_step / num_pairs,
            num_pairs,
        )  # fmt: skip


def _batches(num: int, size: int, generator: torch.Generator) -> Iterator[torch.Tensor]:
    """Endless shuffled minibatches of indices in [0, num) (epoch after epoch)."""
    while True:
        order = torch.randperm(num, generator=generator)
        for start in range(0, num, size):
            yield order[start : start + size]


class _Validator:
    """Scores the validation pairs by the posterior mean on a grid (and the grid mode)."""

    def __init__(self, val: PairFeatures, grid: torch.Tensor) -> None:
        self.val, self.grid = val, grid
        self.base_accuracy = pairwise_accuracy(val.rewards, val.chosen, val.rejected)
        self.right = torch.zeros(0, dtype=torch.bool)  # per pair, at the last eval

    def __call__(self, head: EnergyHead) -> dict:
        val = self.val
        if val.num_pairs == 0:
            return {}
        head.eval()
        mean, mode = grid_summaries(head, val.embeddings, self.grid)  # (N,) each
        head.train()
        self.right = mean[val.chosen] > mean[val.rejected]
        return {
            "val_accuracy_mean": pairwise_accuracy(mean, val.chosen, val.rejected),
            "val_accuracy_mode": pairwise_accuracy(mode, val.chosen, val.rejected),
            "val_accuracy_base": self.base_accuracy,
        }


def _train(train, val, config, device, objective, progress) -> TrainResult:
    started = time.time()
    used = torch.unique(torch.cat([train.chosen, train.rejected]))  # (U,) rows, sorted
    normalizer = RewardNormalizer(scale=config.reward_scale).fit(train.rewards[used])
    y = normalizer.transform(train.rewards.double()).float()  # (N,) normalised targets
    kept, report = _filter(train, config)
    lo, hi = grid_range(y[used])
    objective = _objective(
        config, objective, torch.linspace(lo, hi, config.train_grid_size, device=device)
    )
    head_config = EnergyHeadConfig(
        embedding_dim=train.dim,
        reward_widths=config.reward_widths,
        joint_widths=config.joint_widths,
        dropout=config.dropout,
    )
    head = EnergyHead(head_config).to(device)
    validator = _Validator(val, torch.linspace(lo, hi, EVAL_GRID_SIZE))
    history, best, last = _loop(head, train, y, kept, objective, validator, config, progress)
    chosen, p_value = select_checkpoint(best, last)
    head.load_state_dict(chosen.state)
    validation = {
        "pairs": val.num_pairs,
        "best_step": chosen.step,
        "most_accurate_step": best.step,
        "most_accurate_vs_last_p_value": p_value,
        "base_accuracy": validator.base_accuracy,
    }
    info = {
        "config": config.to_dict(),
        "objective": objective.name,
        "filter": report.to_dict(),
        "steps": history[-1]["step"] if history else 0,
        "train_pairs": train.num_pairs,
        "seconds": round(time.time() - started, 2),
        "prompts": _seen_prompts(train, val),
    }
    return TrainResult(
        head=head.cpu().eval(),
        normalizer=normalizer,
        history=history,
        filter_report=report,
        validation=validation,
        info=info,
        reward_range=(lo, hi),
        validation_features=val if val.num_pairs else None,
        train_features=train,
        config=config,
    )


def _loop(head, train, y, kept, objective, validator, config, progress):
    """AdamW steps with a validation eval every `eval_every` steps and at the end.

    Returns:
        (history, the most accurate checkpoint, the last checkpoint).
    """
    device = next(head.parameters()).device
    optimizer = torch.optim.AdamW(
        head.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
    )
    # the pairs a step draws from: kept ones, or all when the objective uses the labels too
    pool = torch.arange(train.num_pairs) if objective.uses_dropped_pairs else kept.nonzero()[:, 0]
    total_steps, per_epoch = _budget(config, len(pool))
    _warn_small_budget(config, total_steps, len(pool))
    _warn_under_one_epoch(config, total_steps, per_epoch, len(pool))
    eval_every = config.eval_every or per_epoch
    generator = torch.Generator().manual_seed(config.seed + 1)  # minibatches and negatives
    batches = _batches(len(pool), max(config.batch_size // 2, 1), generator)
    rows_of, y = _row_reader(train.embeddings, device), y.to(device)
    chosen, rejected, kept = train.chosen.to(device), train.rejected.to(device), kept.to(device)
    history: list[dict] = []
    best = Checkpoint(-1.0, copy.deepcopy(head.state_dict()), 0, validator.right)
    evals_since_best, running, parts_sum, count, score = 0, 0.0, {}, 0, -1.0
    head.train()
    bar = tqdm(total=total_steps, desc="train energy head", disable=not progress, unit="step")
    for step in range(1, total_steps + 1):
        pick = pool[next(batches)].to(device)
        rows_c, rows_r = chosen[pick], rejected[pick]
        batch = PairBatch(rows_of(rows_c), rows_of(rows_r), y[rows_c], y[rows_r], kept[pick])
        out = objective(head, batch, generator=generator)
        optimizer.zero_grad(set_to_none=True)
        out.loss.backward()
        optimizer.step()
        loss = float(out.loss.detach())
        if not math.isfinite(loss):
            raise FloatingPointError(f"training loss became {loss} at step {step}")
        running, count = running + loss, count + 1
        for k, v in out.parts.items():
            parts_sum[k] = parts_sum.get(k, 0.0) + v
        bar.update(1)
        bar.set_postfix(loss=f"{loss:.3f}")
        if step % eval_every and step != total_steps:
            continue
        entry = {"step": step, "train_loss": running / count}
        entry.update({f"train_{k}": v / count for k, v in parts_sum.items()})
        entry.update(validator(head))
        history.append(entry)
        running, parts_sum, count = 0.0, {}, 0
        score = entry.get("val_accuracy_mean", -1.0)
        if score > best.accuracy or validator.val.num_pairs == 0:
            best = Checkpoint(score, copy.deepcopy(head.state_dict()), step, validator.right)
            evals_since_best = 0
        else:
            evals_since_best += 1
        patience = config.patience
        if patience is not None and evals_since_best >= patience and step >= config.min_steps:
            logger.info("early stop at step %d (best step %d)", step, best.step)
            break
    bar.close()
    last = Checkpoint(score, copy.deepcopy(head.state_dict()), step, validator.right)
    return history, best, last


def _row_reader(embeddings, device: torch.device):
    """index (B,) on `device` -> rows (B, D) float32 on `device`.

    A tensor table moves to the device once; memory-mapped rows (`MappedRows`) are read and
    cast per mini-batch, so only a batch of them is ever in memory as float32.
    """
    if isinstance(embeddings, torch.Tensor):
        table = embeddings.to(device=device, dtype=torch.float32)
        return lambda index: table[index]
    return lambda index: embeddings[index.cpu()].to(device)


def _seen_prompts(train: PairFeatures, val: PairFeatures) -> dict | None:
    """The prompt hashes trained and validated on (sorted, unique), for overlap checks."""
    if train.prompt_hashes is None:
        return None
    return {
        "hash": PROMPT_HASH_NOTE,
        "train": sorted(set(train.prompt_hashes)),
        "validation": sorted(set(val.prompt_hashes or ())),
    }
