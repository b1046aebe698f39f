"""Configuration of refinement: which refined reward to report and how to compute it."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ebrm._config import check_choice, check_float, check_int, from_dict, invalid, to_dict
from ebrm.energy.posterior import grid_range
from ebrm.errors import DataFormatError

#: the refined rewards `RefineConfig.method` may name (the kind `refine()` returns as `reward`)
METHODS = ("mean", "mode", "median", "conservative", "paper", "ascent")


@dataclass(frozen=True)
class RefineConfig:
    """How `EnergyRewardModel.refine` turns p(y | e) into rewards (DESIGN §1.6-1.7).

    All values are in normalised reward units (the head's `y`).
    """

    method: str = "mean"  # the reported reward: mean|mode|median|conservative|paper|ascent
    conservative_k: float = 1.0  # conservative reward = mean - k * spread (see half_width)
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
        check_choice(self, "method", METHODS)
        check_int(self, "grid_size", low=3, hint="Posterior statistics need a grid.")
        for name in ("row_chunk", "grid_chunk", "paper_steps"):
            check_int(self, name, low=1)
        for name in ("polish_steps", "zoom_levels"):
            check_int(self, name, low=0)
        for name in ("grid_min", "grid_max", "conservative_k"):
            check_float(self, name)
        if not self.grid_min < self.grid_max:
            raise invalid(self, "grid_max", f"> grid_min ({self.grid_min!r})", self.grid_max)
        check_float(self, "p_better_temperature", low=0.0, low_open=True)
        check_choice(self, "compute_dtype", ("float32", "bfloat16"))
        check_float(self, "paper_step_size", low=0.0, low_open=True)
        check_float(self, "paper_decay", low=0.0, high=1.0, low_open=True, high_open=True)
        check_float(self, "paper_min_step", low=0.0, low_open=True)
        check_int(self, "seed")

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
            margin: added below the minimum and above the maximum (see
                `ebrm.energy.posterior.grid_range`, which the trainer uses too).
            **kwargs: other RefineConfig fields.

        Raises:
            DataFormatError: if `rewards` is empty or not finite.
        """
        try:
            lo, hi = grid_range(rewards, margin=margin)
        except DataFormatError as exc:
            raise DataFormatError(f"RefineConfig.for_rewards: {exc}") from exc
        return cls(grid_min=lo, grid_max=hi, **kwargs)

    def to_dict(self) -> dict:
        return to_dict(self)

    @classmethod
    def from_dict(cls, data: dict) -> RefineConfig:
        """Inverse of `to_dict`; unknown keys are dropped with one warning naming them."""
        return from_dict(cls, data)
