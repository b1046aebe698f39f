"""`RefinedRewards`: what `EnergyRewardModel.refine` returns."""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import torch

from ebrm.errors import ConfigError
from ebrm.refine.kinds import (  # noqa: F401  (RECORD_FIELDS: re-exported with the records)
    RECORD_COLUMNS,
    RECORD_FIELDS,
    REFERENCE_KINDS,
    RewardKind,
    check_reward_kind,
)

# The dataclass field of a kind whose record name differs (others: the same name).
_FIELD = {"refined": "reward", "median": "q50"}


def missing_reference(kind: str) -> str:
    """Why a model without stored references has no reward `kind`, and the fix."""
    return (
        f"The reward {kind!r} needs the reference heads that `ebrm train` stores with the "
        "model (references.json), and this model has none; retrain it with the current "
        "ebrm, or pick another reward."
    )


@dataclass(frozen=True)
class RefinedRewards:
    """Per-response rewards, each (N,) float32 CPU tensor in normalised units.

    `reward` is the configured method's output (`method` says which); the posterior
    statistics are always present. Convert locations to the base RM's raw units with
    `EnergyRewardModel.to_raw` (a spread in normalised units times `std_ / scale` of the
    normaliser is the same spread in raw units).
    """

    reward: torch.Tensor  # the configured refined reward
    base: torch.Tensor  # the base RM's reward, normalised
    base_raw: torch.Tensor  # the base RM's reward, raw units
    mean: torch.Tensor  # posterior mean E[y | e]
    std: torch.Tensor  # posterior standard deviation (of the mass on the grid)
    spread: torch.Tensor  # half-width where f >= f(mode) - 1/2: the density's own spread
    q05: torch.Tensor  # 5% posterior quantile
    q50: torch.Tensor  # posterior median
    q95: torch.Tensor  # 95% posterior quantile
    mode: torch.Tensor  # argmax of f (grid + polish)
    log_z: torch.Tensor  # log normaliser of exp f over the grid
    conservative: torch.Tensor  # mean - k * spread (the energy model's, not a reference's std)
    method: str = "mean"  # which refined reward `reward` is
    # the stored references' rewards, e.g. {"laplace", "laplace_std", "laplace_lcb",
    # "ensemble", ...} -> (N,) tensors; empty for a model without references
    references: dict[str, torch.Tensor] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.reward.shape[0])

    def reward_for(self, kind: RewardKind | str) -> torch.Tensor:
        """The reward of one kind (see `RewardKind`): the one accessor from a result to a
        column (`to_records` writes the same column under the kind's name).

        Raises:
            ConfigError: for an unknown kind, or a reference kind the model does not have.
        """
        kind = check_reward_kind(kind)
        if kind in REFERENCE_KINDS:
            if kind not in self.references:
                raise ConfigError(missing_reference(kind))
            return self.references[kind]
        return getattr(self, _FIELD.get(kind, kind))

    def columns(self) -> dict[str, torch.Tensor]:
        """Every per-response column under its record name: each `RewardKind` the result
        has (`refined`, `mean`, ..., the references' kinds) and the statistics (`base_raw`,
        `std`, `spread`, `q05`, `q95`, `log_z`, the references' `<name>_std`)."""
        columns = {name: getattr(self, _FIELD.get(name, name)) for name in RECORD_COLUMNS}
        columns.update(self.references)
        return columns

    def to_records(self) -> list[dict]:
        """One dict of Python floats per response, keyed as `columns`, plus `method` (what
        `refined` is): the one record shape of `ebrm score`, the server, best-of-n and TRL."""
        columns = {name: value.tolist() for name, value in self.columns().items()}
        return [
            {"method": self.method, **{name: col[i] for name, col in columns.items()}}
            for i in range(len(self))
        ]

    @classmethod
    def empty(cls, method: str) -> RefinedRewards:
        names = [f.name for f in fields(cls) if f.name not in ("method", "references")]
        return cls(**{name: torch.zeros(0) for name in names}, method=method)
