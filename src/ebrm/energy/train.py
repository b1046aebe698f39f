"""Training the energy head on stored features: one readable loop (DESIGN §1.2-1.5).

seed -> checks -> split -> normalise -> filter -> head -> AdamW -> loop (eval)
-> keep the last checkpoint unless an earlier one is clearly better on validation
-> choose the refined-reward method on validation -> EnergyRewardModel.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm.auto import tqdm

from ebrm._device import resolve_device
from ebrm._io import atomic_write, atomic_write_json
from ebrm.energy.config import EnergyHeadConfig
from ebrm.energy.filter import FilterReport, filter_conflicts
from ebrm.energy.head import EnergyHead
from ebrm.energy.normalize import RewardNormalizer
from ebrm.energy.objectives import Objective, PairBatch, make_objective
from ebrm.energy.presets import TrainConfig
from ebrm.energy.validation import (
    Checkpoint,
    check_features,
    choose_method,
    pairwise_accuracy,
    posterior_summaries,
    select_checkpoint,
)
from ebrm.errors import ConfigError, DataFormatError
from ebrm.features.table import PairFeatures

logger = logging.getLogger(__name__)


@dataclass
class TrainResult:
    """What `train_energy_head` returns."""

    model: object  # ebrm.model.EnergyRewardModel
    history: list[dict]  # one entry per validation eval: step, train loss (+parts), accuracies
    filter_report: FilterReport
    validation: dict  # final validation numbers (base/mean/mode accuracy, chosen method)
    config: TrainConfig = field(default_factory=TrainConfig)

    def save(self, out_dir: str | Path) -> Path:
        """Write the refined-model directory plus `history.json` and `training_curve.png`."""
        out_dir = Path(out_dir)
        self.model.save_pretrained(out_dir)
        atomic_write_json(out_dir / "history.json", self.history)
        plot_history(self.history, out_dir / "training_curve.png")
        return out_dir


def plot_history(history: list[dict], path: str | Path) -> None:
    """Training loss and validation pairwise accuracy against the step (PNG).

    Uses a bare `Figure` (rendered by Agg), not pyplot: no global backend state, no display.
    """
    from matplotlib.figure import Figure

    steps = [h["step"] for h in history]
    fig = Figure(figsize=(9, 3.5))
    ax_loss, ax_acc = fig.subplots(1, 2)
    ax_loss.plot(steps, [h["train_loss"] for h in history], marker=".")
    ax_loss.set(xlabel="optimiser step", ylabel="training loss", title="loss")
    for key, label in (("val_accuracy_mean", "refined (mean)"), ("val_accuracy_mode", "mode")):
        values = [h.get(key) for h in history]
        if any(v is not None for v in values):
            ax_acc.plot(steps, values, marker=".", label=label)
    if history and history[0].get("val_accuracy_base") is not None:
        ax_acc.axhline(history[0]["val_accuracy_base"], color="grey", ls="--", label="base")
    ax_acc.set(xlabel="optimiser step", ylabel="pairwise accuracy", title="validation")
    ax_acc.legend(loc="lower right")
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=100))


# DESIGN §1.5, measured: on ~1k kept HH-RLHF pairs the head needs about 600 optimiser steps
# to leave its initialisation; the paper's 5 epochs are ~40 there.
FEW_STEPS = 600


def _budget(config: TrainConfig, num_train_pairs: int) -> tuple[int, int]:
    """(total optimiser steps, steps per epoch over the training pairs)."""
    pairs_per_step = max(config.batch_size // 2, 1)
    per_epoch = max(math.ceil(num_train_pairs / pairs_per_step), 1)
    if config.max_steps is not None:
        return config.max_steps, per_epoch
    return max(int(round(config.epochs * per_epoch)), 1), per_epoch


def _batches(num: int, size: int, generator: torch.Generator):
    """Endless shuffled minibatches of indices in [0, num) (epoch after epoch)."""
    while True:
        order = torch.randperm(num, generator=generator)
        for start in range(0, num, size):
            yield order[start : start + size]


def train_energy_head(
    features: PairFeatures,
    config: TrainConfig | None = None,
    *,
    base_rm_info: dict | None = None,
    objective: Objective | None = None,
    progress: bool = True,
) -> TrainResult:
    """Train an energy head with NCE+ (or a preference-aware objective) on stored features.

    Args:
        features: embeddings and raw base rewards of the responses, and the pairs.
        config: training settings (default: the `small-data` preset).
        base_rm_info: provenance of the base RM (recorded in the model).
        objective: a custom `Objective` instead of `config.objective`; if it has a `grid`
            attribute that is None, the trainer sets it to the training reward grid.
        progress: show a tqdm progress bar.

    Returns:
        TrainResult with the model at the selected checkpoint (`select_checkpoint`).

    Raises:
        DataFormatError: empty data, NaN/inf values, or every pair filtered out.
    """
    config = config or TrainConfig()
    check_features(features)
    device = resolve_device(config.device)
    rng_devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=rng_devices):
        torch.manual_seed(config.seed)  # head init and dropout; restored on exit
        return _train(features, config, device, base_rm_info or {}, objective, progress)


def _train(features, config, device, base_rm_info, objective, progress) -> TrainResult:
    from ebrm.model import EnergyRewardModel
    from ebrm.refine import RefineConfig
    from ebrm.refine import grid as grid_refine
    from ebrm.refine.calibration import fit_temperature

    started = time.time()
    train, val = features.split(validation_fraction=config.validation_fraction, seed=config.seed)
    if train.num_pairs == 0:
        raise DataFormatError(
            f"no training pairs left after holding out {config.validation_fraction:.0%} of "
            f"{features.num_pairs} for validation; provide more pairs or lower the fraction"
        )
    train_rows = torch.unique(torch.cat([train.chosen, train.rejected]))
    normalizer = RewardNormalizer(scale=config.reward_scale).fit(features.rewards[train_rows])
    y_all = normalizer.transform(features.rewards.double()).float()  # (N,)

    if config.filter_conflicts:
        kept, report = filter_conflicts(
            features.rewards[train.chosen], features.rewards[train.rejected]
        )
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

    refine_config = RefineConfig.for_rewards(y_all[train_rows])
    grid = torch.linspace(
        refine_config.grid_min, refine_config.grid_max, config.train_grid_size, device=device
    )
    if objective is not None:
        if not isinstance(objective, Objective):
            raise ConfigError(
                f"objective must implement ebrm.energy.Objective (name, uses_dropped_pairs, "
                f"__call__(head, batch, *, generator)); got {type(objective).__name__}"
            )
        if getattr(objective, "grid", False) is None:
            objective.grid = grid
    else:
        objective = make_objective(
            config.objective,
            noise_std=config.effective_noise_std,
            positive_noise_ratio=config.positive_noise_ratio,
            num_negatives=config.num_negatives,
            reg_weight=config.reg_weight,
            bt_weight=config.bt_weight,
            margin=config.margin,
            grid=grid,
        )
    # the pairs a step draws from: kept ones, or all when the objective uses the labels too
    pool = torch.arange(train.num_pairs) if objective.uses_dropped_pairs else kept.nonzero()[:, 0]

    head_config = EnergyHeadConfig(
        embedding_dim=features.dim,
        reward_widths=config.reward_widths,
        joint_widths=config.joint_widths,
        dropout=config.dropout,
    )
    head = EnergyHead(head_config).to(device)
    optimizer = torch.optim.AdamW(
        head.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
    )
    emb = features.embeddings.to(device=device, dtype=torch.float32)
    y_dev = y_all.to(device)
    kept_dev = kept.to(device)
    total_steps, per_epoch = _budget(config, len(pool))
    if config.max_steps is None and total_steps < FEW_STEPS:
        logger.warning(
            "the budget is %d optimiser steps (%g epochs of %d training pairs, %d pairs a step): "
            "on data this small the energy head barely leaves its initialisation (about %d+ "
            "steps are needed). Set a step budget (ebrm train --steps N, TrainConfig.max_steps) "
            "or use the default preset.",
            total_steps,
            config.epochs,
            len(pool),
            max(config.batch_size // 2, 1),
            FEW_STEPS,
        )
    eval_every = config.eval_every or per_epoch
    generator = torch.Generator().manual_seed(config.seed + 1)  # negatives
    batches = _batches(len(pool), max(config.batch_size // 2, 1), generator)
    val_rows = torch.unique(torch.cat([val.chosen, val.rejected]))
    base_val_acc = pairwise_accuracy(features.rewards, val.chosen, val.rejected)

    val_right = torch.zeros(0, dtype=torch.bool)  # per validation pair, at the last eval

    def evaluate() -> dict:
        if val.num_pairs == 0:
            return {}
        head.eval()
        mean, mode = posterior_summaries(head, emb, val_rows, refine_config.grid())
        head.train()
        nonlocal val_right
        val_right = mean[val.chosen] > mean[val.rejected]
        return {
            "val_accuracy_mean": pairwise_accuracy(mean, val.chosen, val.rejected),
            "val_accuracy_mode": pairwise_accuracy(mode, val.chosen, val.rejected),
            "val_accuracy_base": base_val_acc,
        }

    history: list[dict] = []
    best = Checkpoint(-1.0, copy.deepcopy(head.state_dict()), 0, val_right)
    evals_since_best, running, parts_sum, count = 0, 0.0, {}, 0
    head.train()
    bar = tqdm(total=total_steps, desc="train energy head", disable=not progress, unit="step")
    for step in range(1, total_steps + 1):
        pick = pool[next(batches)].to(device)
        rows_c, rows_r = train.chosen.to(device)[pick], train.rejected.to(device)[pick]
        batch = PairBatch(emb[rows_c], emb[rows_r], y_dev[rows_c], y_dev[rows_r], kept_dev[pick])
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
        if step % eval_every == 0 or step == total_steps:
            entry = {"step": step, "train_loss": running / count}
            entry.update({f"train_{k}": v / count for k, v in parts_sum.items()})
            entry.update(evaluate())
            history.append(entry)
            running, parts_sum, count = 0.0, {}, 0
            score = entry.get("val_accuracy_mean", -1.0)
            if score > best.accuracy or val.num_pairs == 0:
                best = Checkpoint(score, copy.deepcopy(head.state_dict()), step, val_right)
                evals_since_best = 0
            else:
                evals_since_best += 1
            if (
                config.patience is not None
                and evals_since_best >= config.patience
                and step >= config.min_steps
            ):
                logger.info("early stop at step %d (best step %d)", step, best.step)
                break
    bar.close()

    last = Checkpoint(score, copy.deepcopy(head.state_dict()), step, val_right)
    chosen_ckpt, p_value = select_checkpoint(best, last)
    head.load_state_dict(chosen_ckpt.state)
    head.eval()
    validation = {
        "pairs": val.num_pairs,
        "best_step": chosen_ckpt.step,
        "most_accurate_step": best.step,
        "most_accurate_vs_last_p_value": p_value,
        "base_accuracy": base_val_acc,
    }
    method = "mean"
    if val.num_pairs:
        mean, mode = posterior_summaries(head, emb, val_rows, refine_config.grid())
        choice = choose_method(mean, mode, val.chosen, val.rejected)
        validation.update(choice)
        method = choice["method"]
        validation["refined_accuracy"] = validation[f"{method}_accuracy"]
    temperature = 1.0
    if val.num_pairs:
        # the same grid settings as EnergyRewardModel.p_better, which applies the temperature
        p_val = grid_refine.p_better(
            head, emb[val.chosen.to(device)], emb[val.rejected.to(device)],
            **refine_config.grid_kwargs(),
        )  # fmt: skip
        temperature = fit_temperature(p_val)
        validation["p_better_temperature"] = temperature
    refine_config = RefineConfig.from_dict(
        {**refine_config.to_dict(), "method": method, "p_better_temperature": temperature}
    )
    train_info = {
        "config": config.to_dict(),
        "objective": objective.name,
        "filter": report.to_dict(),
        "validation": validation,
        "steps": history[-1]["step"] if history else 0,
        "train_pairs": train.num_pairs,
        "seconds": round(time.time() - started, 2),
    }
    model = EnergyRewardModel(head.cpu(), normalizer, refine_config, base_rm_info, train_info)
    return TrainResult(model, history, report, validation, config)
