"""Reward normalisation: y = scale * (r - mean) / (std + eps) (DESIGN §1.2)."""

from __future__ import annotations

import math

import torch

from ebrm.errors import ConfigError, DataFormatError

_EPS = 1e-8


class RewardNormalizer:
    """Z-score times a scale, fitted on the training responses' raw base rewards.

    Args:
        scale: the factor `s` applied after z-scoring (the paper uses 4).

    Example:
        >>> norm = RewardNormalizer(scale=4.0).fit(torch.tensor([0.0, 1.0, 2.0]))
        >>> norm.inverse_transform(norm.transform(torch.tensor([1.5])))
        tensor([1.5000])
    """

    def __init__(self, scale: float = 4.0) -> None:
        if not (isinstance(scale, (int, float)) and math.isfinite(scale) and scale > 0):
            raise ConfigError(
                f"The 'scale' parameter of RewardNormalizer must be a finite float > 0. "
                f"Got {scale!r} instead."
            )
        self.scale = float(scale)
        self.mean_: float | None = None
        self.std_: float | None = None

    def fit(self, rewards: torch.Tensor) -> RewardNormalizer:
        """Learn mean and (population) std of `rewards` (N,). Returns self.

        Raises:
            DataFormatError: if `rewards` is empty or holds NaN/inf.
        """
        rewards = torch.as_tensor(rewards, dtype=torch.float64).reshape(-1)
        if rewards.numel() == 0:
            raise DataFormatError("cannot fit the reward normaliser on zero rewards")
        if not torch.isfinite(rewards).all():
            bad = int((~torch.isfinite(rewards)).sum())
            raise DataFormatError(
                f"{bad} of {rewards.numel()} base rewards are NaN or infinite; "
                "re-extract the features or drop those rows"
            )
        self.mean_ = float(rewards.mean())
        self.std_ = float(rewards.std(unbiased=False))
        return self

    def _check_fitted(self) -> None:
        if self.mean_ is None or self.std_ is None:
            raise RuntimeError("RewardNormalizer is not fitted; call fit() first")

    def transform(self, rewards: torch.Tensor) -> torch.Tensor:
        """Raw rewards -> normalised units (same shape and dtype)."""
        self._check_fitted()
        return self.scale * (rewards - self.mean_) / (self.std_ + _EPS)

    def inverse_transform(self, rewards: torch.Tensor) -> torch.Tensor:
        """Normalised units -> raw base-RM units."""
        self._check_fitted()
        return rewards * (self.std_ + _EPS) / self.scale + self.mean_

    def to_dict(self) -> dict:
        self._check_fitted()
        return {"mean": self.mean_, "std": self.std_, "scale": self.scale}

    @classmethod
    def from_dict(cls, data: dict) -> RewardNormalizer:
        try:
            norm = cls(scale=float(data["scale"]))
            norm.mean_, norm.std_ = float(data["mean"]), float(data["std"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(
                f"normaliser state must have numeric 'mean', 'std' and 'scale'; got {data!r}"
            ) from exc
        return norm

    def __repr__(self) -> str:
        return f"RewardNormalizer(scale={self.scale}, mean_={self.mean_}, std_={self.std_})"
