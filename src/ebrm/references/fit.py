"""Fit every reference from the energy head's own training and validation pairs.

The references are what a practitioner would use instead of the energy head, fitted on
the same features, splits and labels: the base RM's own Bradley-Terry sigmoid with one
temperature (`base_temperature`), a Laplace posterior of a BT head and a bootstrap
ensemble of BT heads, each with its `P(a > b)` temperature. The validation pairs that
choose the energy head's checkpoint and temperature choose theirs.

Pairs are read by index from the caller's embedding table a chunk at a time (`PairRows`),
so the table may be a memory-mapped fp16 store; both BT references share one solve of the
prior-precision path (`prior.prior_path`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import torch

from ebrm.references._pairs import PairRows
from ebrm.references.ensemble import DEFAULT_SIZE, fit_ensemble
from ebrm.references.laplace import fit_laplace, pairs_p_better
from ebrm.references.prior import prior_path
from ebrm.references.rewards import Reference, reference_rewards
from ebrm.refine.calibration import fit_temperature

#: the reference rewards on the embeddings, in the order they are reported
REFERENCE_NAMES = ("laplace", "ensemble")


@dataclass(frozen=True)
class ReferenceSet:
    """The fitted references of one refined model."""

    rewards: dict[str, Reference]  # "laplace", "ensemble"
    base_temperature: float = 1.0  # T of the base RM's sigmoid(r_a - r_b), fitted on validation
    report: dict = field(default_factory=dict)  # what each fit chose (JSON-serialisable)

    def columns(self, embeddings: torch.Tensor, *, k: float) -> dict[str, torch.Tensor]:
        """Every reference's reward columns for (N, D) embeddings, each (N,) float32:
        "<name>" (mean), "<name>_std" and "<name>_lcb" (mean - k * std), the record names
        of `ebrm.refine.kinds`."""
        out = {}
        for name, ref in self.rewards.items():
            r = reference_rewards(ref, embeddings, k=k)
            out.update({name: r.mean, f"{name}_std": r.std, f"{name}_lcb": r.lcb})
        return out


def base_p_better(raw_a: torch.Tensor, raw_b: torch.Tensor, temperature: float) -> torch.Tensor:
    """The base RM's Bradley-Terry P(a > b) = sigmoid((r_a - r_b) / T), raw reward units."""
    diff = raw_a.to(torch.float64) - raw_b.to(torch.float64)
    return torch.sigmoid(diff / temperature)


def fit_base_temperature(raw_chosen: torch.Tensor, raw_rejected: torch.Tensor) -> float:
    """The temperature of the base sigmoid on validation pairs, fitted as the energy head's."""
    return fit_temperature(base_p_better(raw_chosen, raw_rejected, 1.0))


def fit_references(
    embeddings: torch.Tensor,
    train_chosen: torch.Tensor,
    train_rejected: torch.Tensor,
    val_chosen: torch.Tensor | None = None,
    val_rejected: torch.Tensor | None = None,
    *,
    raw_rewards: torch.Tensor | None = None,
    ensemble_size: int = DEFAULT_SIZE,
    seed: int = 0,
) -> ReferenceSet:
    """The calibrated base, Laplace and ensemble references.

    Args:
        embeddings: (N, D) one row per response.
        train_chosen, train_rejected: (P,) row indices of the training pairs.
        val_chosen, val_rejected: (V,) row indices of the validation pairs (optional).
        raw_rewards: (N,) the base RM's raw rewards (for the base temperature; optional).
        ensemble_size: K heads of the ensemble.
        seed: seed of the ensemble's bootstrap resamples.
    """
    emb = embeddings if hasattr(embeddings, "shape") else torch.as_tensor(embeddings)
    has_val = val_chosen is not None and val_rejected is not None and len(val_chosen) > 0
    val = val_raw = None
    if has_val:
        val = PairRows(emb, emb, val_chosen, val_rejected)
        if raw_rewards is not None:
            raw = torch.as_tensor(raw_rewards)
            val_raw = (raw[val_chosen], raw[val_rejected])
    train = PairRows(emb, emb, train_chosen, train_rejected)
    return fit_pair_references(train, val, val_raw, ensemble_size=ensemble_size, seed=seed)


def fit_pair_references(
    train: PairRows,
    validation: PairRows | None = None,
    validation_raw: tuple[torch.Tensor, torch.Tensor] | None = None,
    *,
    ensemble_size: int = DEFAULT_SIZE,
    seed: int = 0,
) -> ReferenceSet:
    """`fit_references` on pairs.

    Args:
        train: the training pairs.
        validation: the validation pairs, or None.
        validation_raw: (V,) raw base rewards of the validation pairs (chosen, rejected),
            for the base temperature; or None.
    """
    if validation is not None and not len(validation):
        validation = None
    path = prior_path(train, validation)
    laplace, laplace_report = fit_laplace(train, path=path)
    ensemble, ensemble_report = fit_ensemble(train, size=ensemble_size, seed=seed, path=path)
    rewards: dict[str, Reference] = {}
    report: dict = {"laplace": laplace_report, "ensemble": ensemble_report}
    for name, ref in (("laplace", laplace), ("ensemble", ensemble)):
        temperature = 1.0
        if validation is not None:
            temperature = fit_temperature(pairs_p_better(ref, validation))
        rewards[name] = replace(ref, temperature=temperature)
        report[name]["temperature"] = temperature
    base_t = 1.0
    if validation is not None and validation_raw is not None:
        base_t = fit_base_temperature(*validation_raw)
    report["base"] = {"temperature": base_t}
    report.update(
        train_pairs=len(train), validation_pairs=0 if validation is None else len(validation)
    )
    return ReferenceSet(rewards, base_temperature=base_t, report=report)


def fit_references_on(train, validation=None, **options) -> ReferenceSet:
    """`fit_references` on `PairFeatures` (each side with its own rows, e.g. compacted).

    Args:
        train: the training pairs (`ebrm.features.PairFeatures`).
        validation: the validation pairs (`PairFeatures`), or None.
        **options: ensemble_size, seed.
    """
    pairs = PairRows(train.embeddings, train.embeddings, train.chosen, train.rejected)
    val = raw = None
    if validation is not None and validation.num_pairs:
        v = validation
        val = PairRows(v.embeddings, v.embeddings, v.chosen, v.rejected)
        raw = (v.rewards[v.chosen], v.rewards[v.rejected])
    return fit_pair_references(pairs, val, raw, **options)
