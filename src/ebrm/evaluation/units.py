"""What a benchmark compares, and the rewards it compares them with.

A benchmark is a list of *units* (a pair, an RM-Bench prompt, a RewardBench 2 row); each
unit names the responses that should win (`chosen`) and lose (`rejected`) by their row in
one array of scored responses. A *reward* is one value per response (base, refined, or
any other reward a caller adds), optionally with its own P(a > b). Gathering a reward over
the units gives `UnitScores`, which is all a benchmark's metrics read.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from ebrm.evaluation.metrics import as_numpy

PBetter = Callable[[np.ndarray, np.ndarray], np.ndarray]
"""P(response a beats response b) for (P,) row arrays a and b: returns (P,) in [0, 1]."""


def _rows(x, what: str) -> np.ndarray:
    arr = np.asarray(x, dtype=np.int64)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise ValueError(f"{what} rows must be (units,) or (units, k); got shape {arr.shape}")
    return arr


@dataclass(frozen=True)
class Units:
    """The units of a benchmark: which response rows each one ranks above which.

    `chosen[u]` and `rejected[u]` hold rows into the scored responses; -1 pads units with
    fewer responses than the widest one (RewardBench 2's Ties rows).
    """

    chosen: np.ndarray  # (U, k) int64 rows of the responses that should win; -1 = none
    rejected: np.ndarray  # (U, m) int64 rows of the responses that should lose; -1 = none
    labels: tuple[str | None, ...] | None = None  # subset / domain per unit
    ids: tuple[str, ...] | None = None  # the data's id per unit (per-example files)

    @classmethod
    def of(
        cls,
        chosen: Sequence | np.ndarray,
        rejected: Sequence | np.ndarray,
        *,
        labels: Sequence[str | None] | None = None,
        ids: Sequence[str] | None = None,
    ) -> Units:
        """Units from row arrays: (U,) for one response a side, (U, k) for several."""
        c, r = _rows(chosen, "chosen"), _rows(rejected, "rejected")
        if c.shape[0] != r.shape[0]:
            raise ValueError(f"{c.shape[0]} chosen units but {r.shape[0]} rejected units")
        for name, values in (("labels", labels), ("ids", ids)):
            if values is not None and len(values) != c.shape[0]:
                raise ValueError(f"{len(values)} {name} for {c.shape[0]} units")
        return cls(
            chosen=c,
            rejected=r,
            labels=None if labels is None else tuple(labels),
            ids=None if ids is None else tuple(str(i) for i in ids),
        )

    def __len__(self) -> int:
        return int(self.chosen.shape[0])

    @property
    def is_pairwise(self) -> bool:
        """One chosen and one rejected response per unit."""
        return self.chosen.shape[1] == 1 and self.rejected.shape[1] == 1

    def rows(self) -> np.ndarray:
        """The sorted distinct response rows the units use."""
        both = np.concatenate([self.chosen.ravel(), self.rejected.ravel()])
        return np.unique(both[both >= 0])

    def remap(self, index: np.ndarray) -> Units:
        """The same units with every row r replaced by `index[r]` (-1 stays -1)."""
        index = np.asarray(index, dtype=np.int64)

        def take(a: np.ndarray) -> np.ndarray:
            return np.where(a >= 0, index[np.maximum(a, 0)], -1)

        return Units(take(self.chosen), take(self.rejected), self.labels, self.ids)

    def label_array(self) -> np.ndarray:
        """Labels as a string array ("" where missing)."""
        labels = self.labels or (None,) * len(self)
        return np.asarray(["" if s is None else str(s) for s in labels])


@dataclass(frozen=True)
class Reward:
    """One reward over the scored responses: (N,) values and, optionally, its P(a > b)."""

    values: np.ndarray  # (N,) one value per scored response
    p_better: PBetter | None = None  # for pairwise units: calibration of P(chosen > rejected)

    @classmethod
    def of(cls, values, p_better: PBetter | None = None) -> Reward:
        return cls(as_numpy(values).reshape(-1), p_better)


@dataclass(frozen=True)
class UnitScores:
    """One reward gathered over the units (NaN where a unit has no response)."""

    chosen: np.ndarray  # (U, k) float64
    rejected: np.ndarray  # (U, m) float64
    p_chosen: np.ndarray | None = None  # (U,) P(chosen > rejected), pairwise units only

    @property
    def pair(self) -> tuple[np.ndarray, np.ndarray]:
        """(U,) chosen and rejected scores of pairwise units."""
        return self.chosen[:, 0], self.rejected[:, 0]


def gather(reward: Reward, units: Units) -> UnitScores:
    """`reward` over `units`; P(chosen > rejected) too for pairwise units when it has one."""

    def take(rows: np.ndarray) -> np.ndarray:
        out = reward.values[np.maximum(rows, 0)].astype(np.float64)
        out[rows < 0] = np.nan
        return out

    p = None
    if reward.p_better is not None and units.is_pairwise and len(units):
        p = np.clip(as_numpy(reward.p_better(units.chosen[:, 0], units.rejected[:, 0])), 0, 1)
    return UnitScores(take(units.chosen), take(units.rejected), p)
