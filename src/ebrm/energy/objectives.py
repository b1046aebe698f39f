"""Pluggable training objectives for the energy head.

An objective maps a batch of preference pairs to a scalar loss. `nce+` is the paper's
(DESIGN §1.5); `nce+bt` and `nce+margin` let the preference labels shape the density
(DESIGN §1.8, beyond the paper).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import torch

from ebrm.energy.config import TrainConfig
from ebrm.energy.fused import candidate_scores
from ebrm.energy.head import EnergyHead
from ebrm.energy.losses import bradley_terry_loss, nce_plus_loss
from ebrm.energy.names import OBJECTIVES
from ebrm.energy.noise import sample_candidates
from ebrm.energy.posterior import posterior_mean_projected
from ebrm.errors import ConfigError

# the weights' defaults are TrainConfig's: one source for a trainer and a direct caller
_DEFAULTS = TrainConfig()


@dataclass(frozen=True)
class PairBatch:
    """A batch of training pairs, normalised targets, and which pairs passed the filter."""

    emb_chosen: torch.Tensor  # (B, D)
    emb_rejected: torch.Tensor  # (B, D)
    y_chosen: torch.Tensor  # (B,) normalised base reward of the chosen response
    y_rejected: torch.Tensor  # (B,) normalised base reward of the rejected response
    kept: torch.Tensor  # (B,) bool, pair passed the conflict filter (its records train NCE+)


@dataclass
class ObjectiveOutput:
    loss: torch.Tensor  # scalar, the quantity to minimise
    parts: dict[str, float] = field(default_factory=dict)  # named terms, for the history


@runtime_checkable
class Objective(Protocol):
    """What the trainer needs from an objective."""

    name: str
    # True when the objective also learns from pairs the conflict filter dropped
    uses_dropped_pairs: bool

    def __call__(
        self, head: EnergyHead, batch: PairBatch, *, generator: torch.Generator | None
    ) -> ObjectiveOutput: ...


@dataclass
class NCEPlus:
    """The paper's NCE+ on the records (both responses) of the kept pairs."""

    noise_std: float  # sigma, normalised units
    positive_noise_ratio: float  # beta
    num_negatives: int  # M
    reg_weight: float  # lambda_reg
    name: str = "nce+"
    uses_dropped_pairs: bool = False

    def records(self, batch: PairBatch) -> tuple[torch.Tensor, torch.Tensor]:
        """Embeddings (R, D) and targets (R,) of the kept pairs' responses."""
        kept = batch.kept
        emb = torch.cat([batch.emb_chosen[kept], batch.emb_rejected[kept]])
        return emb, torch.cat([batch.y_chosen[kept], batch.y_rejected[kept]])

    def nce_term(
        self, head: EnergyHead, emb_part: torch.Tensor, targets: torch.Tensor, generator
    ) -> torch.Tensor:
        candidates, log_q = sample_candidates(
            targets,
            noise_std=self.noise_std,
            positive_noise_ratio=self.positive_noise_ratio,
            num_negatives=self.num_negatives,
            generator=generator,
        )
        scores = candidate_scores(head, emb_part, candidates)  # (R, M+1)
        return nce_plus_loss(scores, log_q, reg_weight=self.reg_weight)

    def __call__(self, head, batch, *, generator=None) -> ObjectiveOutput:
        emb, targets = self.records(batch)
        loss = self.nce_term(head, head.project_embeddings(emb), targets, generator)
        return ObjectiveOutput(loss, {"nce": float(loss.detach())})


@dataclass
class NCEPlusBT(NCEPlus):
    """NCE+ on kept pairs plus `bt_weight` * Bradley-Terry on grid posterior means.

    The BT term sees every training pair, dropped ones included: the labels are the only
    signal where the base RM disagrees with them; the filter protects the density targets.
    """

    bt_weight: float = _DEFAULTS.bt_weight  # weight of the Bradley-Terry term
    grid: torch.Tensor | None = None  # (G,) uniform reward grid for the posterior means
    name: str = "nce+bt"
    uses_dropped_pairs: bool = True

    def __call__(self, head, batch, *, generator=None) -> ObjectiveOutput:
        if self.grid is None:
            raise ConfigError("the nce+bt objective needs a reward grid; the trainer sets it")
        n = batch.emb_chosen.shape[0]
        emb_part = head.project_embeddings(torch.cat([batch.emb_chosen, batch.emb_rejected]))
        kept = torch.cat([batch.kept, batch.kept])
        targets = torch.cat([batch.y_chosen, batch.y_rejected])
        parts = {}
        loss = emb_part.new_zeros(())
        if bool(kept.any()):
            nce = self.nce_term(head, emb_part[kept], targets[kept], generator)
            loss = loss + nce
            parts["nce"] = float(nce.detach())
        means = posterior_mean_projected(head, emb_part, self.grid.to(emb_part))  # (2B,)
        bt = bradley_terry_loss(means[:n], means[n:])
        parts["bt"] = float(bt.detach())
        return ObjectiveOutput(loss + self.bt_weight * bt, parts)


@dataclass
class NCEPlusMargin(NCEPlus):
    """NCE+ with label-aware targets: kept pairs' targets pushed `margin` further apart.

    `y_c += margin/2`, `y_r -= margin/2` (normalised units) before sampling candidates.
    """

    margin: float = _DEFAULTS.margin  # extra separation of chosen over rejected, normalised units
    name: str = "nce+margin"

    def __call__(self, head, batch, *, generator=None) -> ObjectiveOutput:
        half = 0.5 * self.margin
        shifted = PairBatch(
            batch.emb_chosen,
            batch.emb_rejected,
            batch.y_chosen + half,
            batch.y_rejected - half,
            batch.kept,
        )
        return NCEPlus.__call__(self, head, shifted, generator=generator)


def make_objective(
    name: str,
    *,
    noise_std: float,
    positive_noise_ratio: float,
    num_negatives: int,
    reg_weight: float,
    bt_weight: float = _DEFAULTS.bt_weight,
    margin: float = _DEFAULTS.margin,
    grid: torch.Tensor | None = None,
) -> Objective:
    """Build an objective by name (one of `OBJECTIVES`)."""
    common = dict(
        noise_std=noise_std,
        positive_noise_ratio=positive_noise_ratio,
        num_negatives=num_negatives,
        reg_weight=reg_weight,
    )
    if name == "nce+":
        return NCEPlus(**common)
    if name == "nce+bt":
        return NCEPlusBT(**common, bt_weight=bt_weight, grid=grid)
    if name == "nce+margin":
        return NCEPlusMargin(**common, margin=margin)
    raise ConfigError(
        f"The 'objective' parameter must be one of {', '.join(OBJECTIVES)}. Got {name!r} instead."
    )
