"""Fit every reference from the energy head's own training and validation pairs."""

from __future__ import annotations

from dataclasses import replace

import torch

from ebrm.references.ensemble import DEFAULT_SIZE, fit_ensemble
from ebrm.references.laplace import fit_laplace
from ebrm.references.rewards import Reference
from ebrm.refine.calibration import fit_temperature

#: the reference rewards, in the order they are reported
REFERENCE_NAMES = ("laplace", "ensemble")


def fit_references(
    embeddings: torch.Tensor,
    train_chosen: torch.Tensor,
    train_rejected: torch.Tensor,
    val_chosen: torch.Tensor | None = None,
    val_rejected: torch.Tensor | None = None,
    *,
    ensemble_size: int = DEFAULT_SIZE,
    seed: int = 0,
) -> tuple[dict[str, Reference], dict]:
    """The Laplace and ensemble references, each with a temperature fitted on validation.

    The same validation pairs choose each reference's prior precision and fit its
    `P(a > b)` temperature (as they choose the energy head's checkpoint and temperature).

    Args:
        embeddings: (N, D) one row per response.
        train_chosen, train_rejected: (P,) row indices of the training pairs.
        val_chosen, val_rejected: (V,) row indices of the validation pairs (optional).
        ensemble_size: K heads of the ensemble.
        seed: seed of the ensemble's bootstrap resamples.

    Returns:
        ({"laplace": ..., "ensemble": ...}, report) with what each fit chose.
    """
    emb = torch.as_tensor(embeddings).to(torch.float64)
    tc, tr = emb[train_chosen], emb[train_rejected]
    has_val = val_chosen is not None and val_rejected is not None and len(val_chosen) > 0
    vc, vr = (emb[val_chosen], emb[val_rejected]) if has_val else (None, None)
    laplace, laplace_report = fit_laplace(tc, tr, vc, vr)
    ensemble, ensemble_report = fit_ensemble(tc, tr, vc, vr, size=ensemble_size, seed=seed)
    refs: dict[str, Reference] = {}
    report = {"laplace": laplace_report, "ensemble": ensemble_report}
    for name, ref in (("laplace", laplace), ("ensemble", ensemble)):
        temperature = fit_temperature(ref.p_better(vc, vr, calibrated=False)) if has_val else 1.0
        refs[name] = replace(ref, temperature=temperature)
        report[name]["temperature"] = temperature
    return refs, report
