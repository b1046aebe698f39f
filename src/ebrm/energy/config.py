"""Configuration of the energy head's architecture."""

from __future__ import annotations

from dataclasses import dataclass

from ebrm._config import check_float, check_int, check_widths, from_dict, to_dict


@dataclass(frozen=True)
class EnergyHeadConfig:
    """Architecture of `EnergyHead` (DESIGN §1.4); the paper's widths are the defaults."""

    embedding_dim: int  # width D of the base RM's embedding
    reward_widths: tuple[int, ...] = (16, 32, 64)  # reward branch y -> 16 -> 32 -> 64
    joint_widths: tuple[int, ...] = (1024, 512)  # joint MLP on [e; h(y)] -> 1024 -> 512 -> 1
    dropout: float = 0.5  # after the first two reward layers and every joint hidden layer

    def __post_init__(self) -> None:
        check_int(self, "embedding_dim", low=1)
        for name in ("reward_widths", "joint_widths"):
            check_widths(self, name)
            object.__setattr__(self, name, tuple(getattr(self, name)))
        check_float(self, "dropout", low=0.0, high=1.0, high_open=True)

    def to_dict(self) -> dict:
        return to_dict(self)

    @classmethod
    def from_dict(cls, data: dict) -> EnergyHeadConfig:
        """Inverse of `to_dict`; unknown keys are dropped with one warning naming them."""
        return from_dict(cls, data)
