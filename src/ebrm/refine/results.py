"""`RefinedRewards`: what `EnergyRewardModel.refine` returns."""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch

from ebrm.errors import ConfigError

#: the kinds `RefinedRewards.reward_for` accepts
KINDS = ("refined", "mean", "mode", "median", "conservative", "base")


@dataclass(frozen=True)
class RefinedRewards:
    """Per-response rewards, each (N,) float32 CPU tensor in normalised units.

    `reward` is the configured method's output (`method` says which); the posterior
    statistics are always present. Convert locations to the base RM's raw units with
    `EnergyRewardModel.to_raw` and spreads with `EnergyRewardModel.to_raw_spread`.
    """

    reward: torch.Tensor  # the configured refined reward
    base: torch.Tensor  # the base RM's reward, normalised
    base_raw: torch.Tensor  # the base RM's reward, raw units
    mean: torch.Tensor  # posterior mean E[y | e]
    std: torch.Tensor  # posterior standard deviation
    q05: torch.Tensor  # 5% posterior quantile
    q50: torch.Tensor  # posterior median
    q95: torch.Tensor  # 95% posterior quantile
    mode: torch.Tensor  # argmax of f (grid + polish)
    log_z: torch.Tensor  # log normaliser of exp f over the grid
    conservative: torch.Tensor  # mean - k * std
    method: str = "mean"  # which refined reward `reward` is

    def __len__(self) -> int:
        return int(self.reward.shape[0])

    def reward_for(self, kind: str) -> torch.Tensor:
        """The reward of one kind: refined|mean|mode|median|conservative|base.

        Raises:
            ConfigError: for an unknown kind.
        """
        if kind == "refined":
            return self.reward
        if kind == "median":
            return self.q50
        if kind in ("mean", "mode", "conservative", "base"):
            return getattr(self, kind)
        raise ConfigError(f"Unknown reward kind {kind!r}; choose one of {', '.join(KINDS)}.")

    def to_records(self) -> list[dict]:
        """One dict of Python floats per response (plus the method name)."""
        names = [f.name for f in fields(self) if f.name != "method"]
        columns = {name: getattr(self, name).tolist() for name in names}
        return [
            {"method": self.method, **{name: columns[name][i] for name in names}}
            for i in range(len(self))
        ]

    @classmethod
    def empty(cls, method: str) -> RefinedRewards:
        names = [f.name for f in fields(cls) if f.name != "method"]
        return cls(**{name: torch.zeros(0) for name in names}, method=method)
