"""Configuration of the energy head's architecture."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from ebrm.errors import ConfigError


@dataclass(frozen=True)
class EnergyHeadConfig:
    """Architecture of `EnergyHead` (DESIGN §1.4); the paper's widths are the defaults."""

    embedding_dim: int  # width D of the base RM's embedding
    reward_widths: tuple[int, ...] = (16, 32, 64)  # reward branch y -> 16 -> 32 -> 64
    joint_widths: tuple[int, ...] = (1024, 512)  # joint MLP on [e; h(y)] -> 1024 -> 512 -> 1
    dropout: float = 0.5  # after the first two reward layers and every joint hidden layer

    def __post_init__(self) -> None:
        object.__setattr__(self, "reward_widths", tuple(int(w) for w in self.reward_widths))
        object.__setattr__(self, "joint_widths", tuple(int(w) for w in self.joint_widths))
        if not isinstance(self.embedding_dim, int) or self.embedding_dim < 1:
            raise ConfigError(
                f"The 'embedding_dim' parameter of EnergyHeadConfig must be an int >= 1. "
                f"Got {self.embedding_dim!r} instead."
            )
        for name in ("reward_widths", "joint_widths"):
            widths = getattr(self, name)
            if not widths or any(w < 1 for w in widths):
                raise ConfigError(
                    f"The '{name}' parameter of EnergyHeadConfig must be a non-empty list of "
                    f"positive ints. Got {widths!r} instead."
                )
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(
                f"The 'dropout' parameter of EnergyHeadConfig must be in [0, 1). "
                f"Got {self.dropout!r} instead."
            )

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict) -> EnergyHeadConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            import logging

            logging.getLogger(__name__).warning("ignoring unknown head config keys: %s", unknown)
        return cls(**{k: v for k, v in data.items() if k in known})
