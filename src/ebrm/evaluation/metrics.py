"""Statistics shared by every benchmark: accuracy, bootstrap intervals, McNemar, a verdict.

Every benchmark score used here is a weighted mean of per-stratum means of per-unit scores
(a unit is a pair or a prompt; a stratum is a subset or a domain), so one stratified
bootstrap serves pairwise accuracy, RewardBench sections and RM-Bench domains alike.
All accuracies are fractions in [0, 1]; sentences print them in percentage points.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from ebrm.stats import mcnemar_exact  # one McNemar for the package; re-exported here

# Bootstrap replicates drawn per chunk: bounds memory at ~chunk * n indices.
_CHUNK = 256


def as_numpy(x: Any, *, dtype=np.float64) -> np.ndarray:
    """A 1-D or n-D numpy copy of a tensor/array/list (torch tensors are detached to CPU)."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=dtype)


def pairwise_correct(r_chosen: Any, r_rejected: Any) -> np.ndarray:
    """Per pair, whether the chosen response scores strictly higher (ties count as wrong).

    Args:
        r_chosen: (P,) scores of the chosen responses.
        r_rejected: (P,) scores of the rejected responses.

    Returns:
        (P,) bool array.
    """
    c, r = as_numpy(r_chosen), as_numpy(r_rejected)
    if c.shape != r.shape or c.ndim != 1:
        raise ValueError(
            f"chosen and rejected scores must be 1-D of equal length; got {c.shape} and {r.shape}"
        )
    return c > r


def weighted_stratified_mean(
    x: np.ndarray, strata: np.ndarray | None, stratum_weights: Mapping[Any, float] | None
) -> float:
    """sum_s W_s * mean(x[strata == s]); a plain mean when `strata` is None."""
    x = np.asarray(x, dtype=np.float64)
    if strata is None:
        return float(x.mean()) if x.size else float("nan")
    total = 0.0
    for stratum, weight in _stratum_weights(strata, stratum_weights).items():
        total += weight * float(x[strata == stratum].mean())
    return total


def _stratum_weights(
    strata: np.ndarray, stratum_weights: Mapping[Any, float] | None
) -> dict[Any, float]:
    present = list(dict.fromkeys(strata.tolist()))
    if stratum_weights is None:
        return {s: 1.0 / len(present) for s in present}
    missing = [s for s in stratum_weights if s not in present]
    if missing:
        raise ValueError(f"stratum weights name strata with no units: {missing}")
    return {s: float(w) for s, w in stratum_weights.items()}


def bootstrap_replicates(
    x: Any,
    *,
    strata: Sequence | np.ndarray | None = None,
    stratum_weights: Mapping[Any, float] | None = None,
    n_boot: int = 2000,
    seed: int = 0,
) -> np.ndarray:
    """Bootstrap replicates of `weighted_stratified_mean(x, strata, stratum_weights)`.

    Units are resampled with replacement within each stratum (keeping stratum sizes), so
    the weights of a stratified score stay valid in every replicate. The draw order is
    fixed (per chunk of replicates, per stratum in order of first appearance), so a seed
    reproduces the replicates exactly.

    Args:
        x: (N,) per-unit scores (0/1 correctness, or a per-prompt score in [0, 1]).
        strata: (N,) stratum label per unit, or None for one stratum.
        stratum_weights: weight per stratum (default: equal weights over present strata).
        n_boot: number of replicates.
        seed: seed of the numpy generator.

    Returns:
        (n_boot,) replicate values.
    """
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1; got {n_boot}")
    x = as_numpy(x)
    if x.ndim != 1 or x.size == 0:
        raise ValueError(f"bootstrap needs a non-empty 1-D array; got shape {x.shape}")
    if strata is None:
        groups = [(np.arange(x.size), 1.0)]
    else:
        strata = np.asarray(strata)
        if strata.shape != x.shape:
            raise ValueError(f"strata must have shape {x.shape}; got {strata.shape}")
        weights = _stratum_weights(strata, stratum_weights)
        groups = [(np.flatnonzero(strata == s), w) for s, w in weights.items()]
    rng = np.random.default_rng(seed)
    out = np.empty(n_boot, dtype=np.float64)
    for start in range(0, n_boot, _CHUNK):
        size = min(_CHUNK, n_boot - start)
        stat = np.zeros(size, dtype=np.float64)
        for index, weight in groups:
            draws = rng.integers(0, index.size, size=(size, index.size))  # (B, n_s)
            stat += weight * x[index[draws]].mean(axis=1)
        out[start : start + size] = stat
    return out


def percentile_interval(replicates: np.ndarray, *, level: float = 0.95) -> list[float]:
    """The percentile bootstrap interval [lo, hi] at `level`."""
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1); got {level}")
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(replicates, [alpha, 1.0 - alpha])
    return [float(lo), float(hi)]


def bootstrap_ci(
    x: Any,
    *,
    strata: Sequence | np.ndarray | None = None,
    stratum_weights: Mapping[Any, float] | None = None,
    n_boot: int = 2000,
    seed: int = 0,
    level: float = 0.95,
) -> list[float]:
    """Percentile bootstrap interval of a (stratified) mean; see `bootstrap_replicates`."""
    reps = bootstrap_replicates(
        x, strata=strata, stratum_weights=stratum_weights, n_boot=n_boot, seed=seed
    )
    return percentile_interval(reps, level=level)


def paired_difference(
    x_base: Any,
    x_refined: Any,
    *,
    strata: Sequence | np.ndarray | None = None,
    stratum_weights: Mapping[Any, float] | None = None,
    n_boot: int = 2000,
    seed: int = 0,
    level: float = 0.95,
    mcnemar: bool | None = None,
) -> dict[str, Any]:
    """Refined-minus-base difference with a paired bootstrap interval over units.

    Each replicate resamples units (pairs or prompts) once and scores both sides on the
    same resample, which is the bootstrap of the per-unit difference. When the scores are
    0/1 correctness (`mcnemar=None` detects it; True/False forces it), the exact McNemar
    p-value on the discordant pairs is added.

    Returns:
        {"delta", "ci95", "n", "n_boot", "level"} and, for binary scores,
        {"improved", "worsened", "mcnemar_p"} (improved = base wrong, refined right).
    """
    xb, xr = as_numpy(x_base), as_numpy(x_refined)
    if xb.shape != xr.shape:
        raise ValueError(f"base and refined must have equal shapes; got {xb.shape}, {xr.shape}")
    strata_arr = None if strata is None else np.asarray(strata)
    diff = xr - xb
    out: dict[str, Any] = {
        "delta": weighted_stratified_mean(diff, strata_arr, stratum_weights),
        "ci95": bootstrap_ci(
            diff,
            strata=strata_arr,
            stratum_weights=stratum_weights,
            n_boot=n_boot,
            seed=seed,
            level=level,
        ),
        "n": int(xb.size),
        "n_boot": int(n_boot),
        "level": level,
    }
    if mcnemar is None:
        mcnemar = bool(np.isin(xb, (0.0, 1.0)).all() and np.isin(xr, (0.0, 1.0)).all())
    if mcnemar:
        improved = int(((xb == 0) & (xr == 1)).sum())
        worsened = int(((xb == 1) & (xr == 0)).sum())
        out.update(
            improved=improved, worsened=worsened, mcnemar_p=mcnemar_exact(improved, worsened)
        )
    return out


def verdict(
    delta: Mapping[str, Any],
    *,
    unit: str = "pairs",
    what: str = "accuracy",
    who: str = "refined",
) -> str:
    """One plain sentence: did `who` (refinement, or another reward) beat the base?

    "helped" only when the whole interval is above 0, "hurt" only when it is below 0.
    """
    d, (lo, hi) = 100.0 * delta["delta"], (100.0 * v for v in delta["ci95"])
    level = round(100 * delta.get("level", 0.95))
    stats = f"{who} - base {what} = {d:+.1f} points ({level}% CI {_end(lo)} to {_end(hi)}"
    if "mcnemar_p" in delta:
        stats += f", McNemar p = {format_p(delta['mcnemar_p'])}"
    stats += f", n = {delta['n']} {unit})"
    subject = "Refinement" if who == "refined" else f"The {who} reward"
    if lo > 0:
        return f"{subject} helped: {stats}."
    if hi < 0:
        return f"{subject} hurt: {stats}."
    # "+0.0 to +1.4 ...; the interval includes 0" read as a contradiction: an end at 0 (the
    # paired bootstrap of accuracies often ends exactly there) touches 0, and the sentence
    # says what either means
    where = "touches 0" if 0.0 in (lo, hi) else "includes 0"
    return (
        f"No detectable difference: {stats}; the interval {where}, "
        f"so these {unit} cannot tell {who} from base."
    )


def _end(points: float) -> str:
    """An interval end in points: one decimal, two when one would print a nonzero end as
    0.0 (so "+0.0" always means exactly 0)."""
    return f"{points:+.2f}" if 0 < abs(points) < 0.05 else f"{points:+.1f}"


def format_p(p: float) -> str:
    return f"{p:.2g}" if p < 0.001 else f"{p:.3f}"
