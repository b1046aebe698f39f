"""Choosing how to refine, on validation pairs: the reported reward and the P(a > b) scale.

Two decisions a trained head leaves open, both made on the pairs training validated on:

* the refined reward: the posterior mean (default) or the mode, switched only when the mode
  is clearly better (an exact McNemar test: on a few hundred pairs "higher accuracy" picks
  noise, DESIGN §1.8);
* the temperature of `p_better`, fitted by likelihood so the probabilities are calibrated
  (`ebrm.refine.calibration`).

`ebrm.model.EnergyRewardModel.from_training` calls `select_refinement`.
"""

from __future__ import annotations

from dataclasses import replace

import torch
from torch import nn

from ebrm.features.table import PairFeatures
from ebrm.refine import grid as grid_refine
from ebrm.refine.calibration import fit_temperature
from ebrm.refine.config import RefineConfig
from ebrm.stats import mcnemar_exact


def choose_method(
    mean: torch.Tensor,
    mode: torch.Tensor,
    chosen: torch.Tensor,
    rejected: torch.Tensor,
    *,
    alpha: float = 0.05,
) -> dict:
    """Choose the refined reward between posterior mean (default) and mode.

    Switches to the mode only when it is more accurate on validation and an exact McNemar
    test on the pairs where the two disagree gives p < alpha.

    Args:
        mean, mode: (N,) per-response posterior mean and mode.
        chosen, rejected: (P,) rows of each validation pair.

    Returns:
        dict with mean_accuracy, mode_accuracy, mode_vs_mean_p_value, method.
    """
    right_mean = mean[chosen] > mean[rejected]
    right_mode = mode[chosen] > mode[rejected]
    only_mode = int((right_mode & ~right_mean).sum())
    only_mean = int((right_mean & ~right_mode).sum())
    p_value = mcnemar_exact(only_mode, only_mean)
    acc_mean, acc_mode = float(right_mean.double().mean()), float(right_mode.double().mean())
    method = "mode" if acc_mode > acc_mean and p_value < alpha else "mean"
    return {
        "mean_accuracy": acc_mean,
        "mode_accuracy": acc_mode,
        "mode_vs_mean_p_value": p_value,
        "method": method,
    }


def select_refinement(
    head: nn.Module,
    validation: PairFeatures,
    config: RefineConfig,
    *,
    alpha: float = 0.05,
) -> tuple[RefineConfig, dict]:
    """The refine config with the method and `p_better` temperature chosen on `validation`.

    Args:
        head: the trained energy head.
        validation: the validation pairs (their embeddings; labels: chosen beats rejected).
        config: the refine settings to start from (grid range, ...).
        alpha: significance level of the mean-vs-mode McNemar test.

    Returns:
        (the new config, the numbers behind it: `choose_method`'s plus refined_accuracy and
        p_better_temperature). With no validation pairs: `config` unchanged and {}.
    """
    if validation.num_pairs == 0:
        return config, {}
    val = validation.compact()
    post = grid_refine.grid_posterior(head, val.embeddings, **config.grid_kwargs())
    choice = choose_method(post.mean, post.mode, val.chosen, val.rejected, alpha=alpha)
    choice["refined_accuracy"] = choice[f"{choice['method']}_accuracy"]
    # the same grid settings as EnergyRewardModel.p_better, which applies the temperature
    p_val = grid_refine.p_better(
        head, val.embeddings[val.chosen], val.embeddings[val.rejected], **config.grid_kwargs()
    )
    choice["p_better_temperature"] = fit_temperature(p_val)
    new = replace(
        config, method=choice["method"], p_better_temperature=choice["p_better_temperature"]
    )
    return new, choice
