"""`RefinedRewards`: what `EnergyRewardModel.refine` returns."""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import torch

from ebrm.errors import ConfigError
from ebrm.refine.kinds import _FIELD, REFERENCE_KINDS, RewardKind, check_reward_kind


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
    conservative: torch.Tensor  # mean - k * spread
    method: str = "mean"  # which refined reward `reward` is
    # the stored references' rewards, e.g. {"laplace", "laplace_std", "laplace_conservative",
    # "ensemble", ...} -> (N,) tensors; empty for a model without references
    references: dict[str, torch.Tensor] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.reward.shape[0])

    @staticmethod
    def field_for(kind: RewardKind | str) -> str:
        """The field (and `to_records` key) that holds the reward of `kind`.

        Raises:
            ConfigError: for an unknown kind.
        """
        return _FIELD.get(check_reward_kind(kind), kind)

    def reward_for(self, kind: RewardKind | str) -> torch.Tensor:
        """The reward of one kind (see `RewardKind`).

        Raises:
            ConfigError: for an unknown kind, or a reference kind the model does not have.
        """
        name = self.field_for(kind)
        if kind in REFERENCE_KINDS:
            if name not in self.references:
                raise ConfigError(
                    f"The reward kind {kind!r} needs the reference heads that `ebrm train` "
                    "stores with the model (references.json), and this model has none; "
                    "retrain it with the current ebrm, or pick another kind."
                )
            return self.references[name]
        return getattr(self, name)

    def to_records(self) -> list[dict]:
        """One dict of Python floats per response (the method name, the references' keys)."""
        names = [f.name for f in fields(self) if f.name not in ("method", "references")]
        columns = {name: getattr(self, name).tolist() for name in names}
        columns.update({name: value.tolist() for name, value in self.references.items()})
        return [
            {"method": self.method, **{name: col[i] for name, col in columns.items()}}
            for i in range(len(self))
        ]

    @classmethod
    def empty(cls, method: str) -> RefinedRewards:
        names = [f.name for f in fields(cls) if f.name not in ("method", "references")]
        return cls(**{name: torch.zeros(0) for name in names}, method=method)
