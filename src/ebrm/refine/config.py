"""Configuration of refinement: which refined reward to report and how to compute it."""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass, fields

import torch

from ebrm.errors import ConfigError, DataFormatError

logger = logging.getLogger(__name__)

#: the refined rewards `RefineConfig.method` may name (the kind `refine()` returns as `reward`)
METHODS = ("mean", "mode", "median", "conservative", "paper", "ascent")


@dataclass(frozen=True)
class RefineConfig:
    """How `EnergyRewardModel.refine` turns p(y | e) into rewards (DESIGN §1.6-1.7).

    All values are in normalised reward units (the head's `y`).
    """

    method: str = "mean"  # the reported reward: mean|mode|median|conservative|paper|ascent
    conservative_k: float = 1.0  # conservative reward = mean - k * std
    p_better_temperature: float = 1.0  # P(y_a > y_b) = sigmoid(logit(p) / T); T fitted on val
    grid_size: int = 128  # points of the shared grid (posteriors narrower than a cell are zoomed)
    grid_min: float = -16.0  # lower end of the grid (training range minus a margin)
    grid_max: float = 16.0  # upper end of the grid (training range plus a margin)
    polish_steps: int = 8  # golden-section steps (+1 parabolic) refining the argmax (0 = none)
    zoom_levels: int = 4  # finer local grids for posteriors narrower than a cell (0 = never)
    row_chunk: int = 64  # responses per grid pass (memory ~ row_chunk*grid_chunk*width*4 B)
    grid_chunk: int = 256  # grid points per pass
    compute_dtype: str = "float32"  # grid hidden layers: float32 (exact) or bfloat16 (GPUs)
    paper_steps: int = 50  # T, gradient-ascent iterations of paper/ascent mode
    paper_step_size: float = 0.5  # lam0, initial step size of paper/ascent mode
    paper_decay: float = 0.2  # eta, step-size factor after a rejected step
    paper_min_step: float = 1e-6  # a sample stops once its step size falls below this
    seed: int = 0  # seed of paper mode's hybrid initialisation (uniform redraws)

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ConfigError(
                f"The 'method' parameter of RefineConfig must be one of {', '.join(METHODS)}. "
                f"Got {self.method!r} instead."
            )
        for name in ("grid_size", "row_chunk", "grid_chunk", "paper_steps"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(
                    f"The '{name}' parameter of RefineConfig must be an int >= 1. "
                    f"Got {value!r} instead."
                )
        if self.grid_size < 3:
            raise ConfigError(
                f"The 'grid_size' parameter of RefineConfig must be >= 3 (posterior statistics "
                f"need a grid). Got {self.grid_size!r} instead."
            )
        if (
            isinstance(self.polish_steps, bool)
            or not isinstance(self.polish_steps, int)
            or (self.polish_steps < 0)
        ):
            raise ConfigError(
                f"The 'polish_steps' parameter of RefineConfig must be an int >= 0. "
                f"Got {self.polish_steps!r} instead."
            )
        for name in ("grid_min", "grid_max", "conservative_k"):
            if not math.isfinite(float(getattr(self, name))):
                raise ConfigError(
                    f"The '{name}' parameter of RefineConfig must be finite. "
                    f"Got {getattr(self, name)!r} instead."
                )
        t = self.p_better_temperature
        if (
            isinstance(t, bool)
            or not isinstance(t, (int, float))
            or not (math.isfinite(t) and t > 0)
        ):
            raise ConfigError(
                "The 'p_better_temperature' parameter of RefineConfig must be a finite float > 0. "
                f"Got {t!r} instead."
            )
        if self.compute_dtype not in ("float32", "bfloat16"):
            raise ConfigError(
                f"The 'compute_dtype' parameter of RefineConfig must be 'float32' or 'bfloat16'. "
                f"Got {self.compute_dtype!r} instead."
            )
        if not self.grid_min < self.grid_max:
            raise ConfigError(
                f"RefineConfig needs grid_min < grid_max. Got grid_min={self.grid_min!r}, "
                f"grid_max={self.grid_max!r}."
            )
        if not self.paper_step_size > 0:
            raise ConfigError(
                f"The 'paper_step_size' parameter of RefineConfig must be > 0. "
                f"Got {self.paper_step_size!r} instead."
            )
        if not 0 < self.paper_decay < 1:
            raise ConfigError(
                f"The 'paper_decay' parameter of RefineConfig must be in (0, 1). "
                f"Got {self.paper_decay!r} instead."
            )
        if not self.paper_min_step > 0:
            raise ConfigError(
                f"The 'paper_min_step' parameter of RefineConfig must be > 0. "
                f"Got {self.paper_min_step!r} instead."
            )

    def grid(self) -> torch.Tensor:
        """The shared grid: `grid_size` evenly spaced float32 points (G,)."""
        return torch.linspace(self.grid_min, self.grid_max, self.grid_size, dtype=torch.float32)

    def grid_kwargs(self) -> dict:
        """Keyword arguments of `ebrm.refine.grid` functions (grid_posterior, p_better)."""
        return {
            "grid": self.grid(),
            "row_chunk": self.row_chunk,
            "grid_chunk": self.grid_chunk,
            "polish_steps": self.polish_steps,
            "zoom_levels": self.zoom_levels,
            "compute_dtype": self.compute_dtype,
        }

    @classmethod
    def for_rewards(
        cls, rewards: torch.Tensor, *, margin: float | None = None, **kwargs
    ) -> RefineConfig:
        """A config whose grid covers normalised training rewards plus a margin.

        Args:
            rewards: (N,) normalised rewards of the training responses.
            margin: added below the minimum and above the maximum; default one standard
                deviation of `rewards` (4 units at scale 4), about one NCE noise sigma, so
                the grid spans where the head was trained but not its untrained far tails.
            **kwargs: other RefineConfig fields.

        Raises:
            DataFormatError: if `rewards` is empty or not finite.
        """
        rewards = torch.as_tensor(rewards, dtype=torch.float64).reshape(-1)
        if rewards.numel() == 0 or not torch.isfinite(rewards).all():
            raise DataFormatError(
                "RefineConfig.for_rewards needs a non-empty tensor of finite normalised rewards"
            )
        if margin is None:
            margin = max(float(rewards.std(unbiased=False)), 1.0)
        lo, hi = float(rewards.min()) - margin, float(rewards.max()) + margin
        return cls(grid_min=lo, grid_max=hi, **kwargs)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> RefineConfig:
        """Inverse of `to_dict`; unknown keys are ignored with a warning."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            logger.warning("ignoring unknown refine config keys: %s", unknown)
        return cls(**{k: v for k, v in data.items() if k in known})
