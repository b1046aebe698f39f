"""The names of "which reward": one `RewardKind` per per-response reward, without torch.

Every option, keyword, request field and environment variable that picks a reward is called
`reward` (`--reward`, `reward=`, `EBRM_REWARD`, the server's `"reward"`) and takes one of
these names; the same names key every record a result is written as
(`RefinedRewards.to_records`), so a kind is its column. The CLI offers them as choices
before torch loads.
"""

from __future__ import annotations

import warnings
from typing import Literal, get_args

from ebrm.errors import ConfigError

RewardKind = Literal[
    "refined", "mean", "mode", "median", "conservative", "base",
    "laplace", "laplace_lcb", "ensemble", "ensemble_lcb",
]  # fmt: skip
"""Which per-response reward a caller uses, all but the references in normalised units:

* `refined`: the model's configured refinement (`RefineConfig.method`);
* `mean`, `mode`, `median`: the energy head's posterior mean, mode and median;
* `conservative`: the energy model's `mean - k*spread` (spread: the half-width of the
  density's own peak, `RefinedRewards.spread`);
* `base`: the frozen base RM's reward;
* `laplace`, `ensemble`: a reference stored with the model (`ebrm.references`: a Laplace or
  bootstrap-ensemble Bradley-Terry head, in its own log-odds units), its mean;
* `laplace_lcb`, `ensemble_lcb`: that reference's lower confidence bound `mean - k*std`
  (its predictive standard deviation, not the energy head's spread).
"""

REWARD_KINDS: tuple[RewardKind, ...] = get_args(RewardKind)
#: the kinds a model has only when `ebrm train` stored references with it
REFERENCE_KINDS: tuple[str, ...] = ("laplace", "laplace_lcb", "ensemble", "ensemble_lcb")
DEFAULT_REWARD: RewardKind = "refined"  # what every option and keyword picks unless told

# The record columns of the energy model, in order: its kinds, then its statistics.
RECORD_COLUMNS = (
    "refined", "mean", "mode", "median", "conservative", "base",
    "base_raw", "std", "spread", "q05", "q95", "log_z",
)  # fmt: skip

# What each field of a record means and what it is for: the one text behind `ebrm score
# --help`, the server's field descriptions and docs/concepts.md ("Reading a score"). Every
# value is in normalised units (the base RM's training rewards have mean 0 and scale 4)
# unless it says otherwise. `<name>` stands for each stored reference (laplace, ensemble).
RECORD_FIELDS: dict[str, str] = {
    "method": "which refined reward `refined` is (mean, mode, median, conservative, paper, "
    "ascent): the model's configured method",
    "refined": "the model's refined reward (its configured method); the reward for RL, "
    "best-of-n and ranking",
    "mean": "posterior mean E[y | e] of the energy head's density p(y | e)",
    "mode": "the most likely reward, argmax of f(e, y)",
    "median": "posterior median (its 50% quantile)",
    "conservative": "mean - k * spread (k stored with the model): lower where the head is "
    "unsure; the RL or best-of-n reward when reward hacking is the worry",
    "base": "the frozen base RM's reward, normalised",
    "base_raw": "the frozen base RM's reward in its own raw units",
    "std": "posterior standard deviation of p(y | e) over the grid; it grows with the "
    "grid's range where f is flat, so prefer spread to judge one response",
    "spread": "half the width of the region where p(y | e) is at least e^-1/2 of its peak "
    "(the std for a Gaussian): how unsure the head is about this response; filter or "
    "abstain on a large spread",
    "q05": "5% posterior quantile: the low end of a 90% interval, to report with q95",
    "q95": "95% posterior quantile: the high end of a 90% interval, to report with q05",
    "log_z": "log normaliser of exp f(e, y) over the grid (diagnostic)",
    "<name>": "a reference's reward, in its own log-odds units: the mean of its Bradley-Terry "
    "posterior (laplace) or of its bootstrap heads (ensemble)",
    "<name>_std": "that reference's standard deviation of the reward (its epistemic "
    "uncertainty; the better out-of-distribution signal in our results)",
    "<name>_lcb": "that reference's lower confidence bound, mean - k * std (its "
    "conservative reward)",
}

#: which field of a record to use for what (with RECORD_FIELDS, wherever records are explained)
RECORD_USE = (
    "Which field for what: an RL or best-of-n reward: refined, or conservative against "
    "reward hacking; filtering or abstaining: spread (large = the head is unsure); "
    "reporting: the 90% interval q05 to q95."
)

#: Spellings of earlier releases, accepted with a DeprecationWarning until the next one.
DEPRECATED_KINDS: dict[str, RewardKind] = {
    "laplace-conservative": "laplace_lcb",
    "laplace_conservative": "laplace_lcb",
    "ensemble-conservative": "ensemble_lcb",
    "ensemble_conservative": "ensemble_lcb",
}


def deprecated(old: str, new: str, *, stacklevel: int = 3) -> None:
    """Warn once per call site that `old` is a deprecated spelling of `new`."""
    warnings.warn(
        f"{old} is deprecated and will be removed in the next release; use {new}.",
        DeprecationWarning,
        stacklevel=stacklevel,
    )


def check_reward_kind(kind: str, *, what: str = "reward") -> RewardKind:
    """`kind` as a `RewardKind` (a deprecated spelling warns and maps to its new name), or a
    `ConfigError` naming the choices (`what` names the option)."""
    if kind in DEPRECATED_KINDS:
        deprecated(f"The reward kind {kind!r}", repr(DEPRECATED_KINDS[kind]), stacklevel=3)
        return DEPRECATED_KINDS[kind]
    if kind not in REWARD_KINDS:
        raise ConfigError(f"Unknown {what} {kind!r}; choose one of {', '.join(REWARD_KINDS)}.")
    return kind  # type: ignore[return-value]


def resolve_reward(
    reward: str | None, old: str | None = None, *, old_name: str = "mode", what: str = "reward"
) -> RewardKind:
    """The kind a caller asked for: `reward`, or the value of a renamed argument `old_name`
    (an earlier release's `mode=`/`kind=`/`EBRM_MODE`/`--mode`), which warns; `None` for
    both means `DEFAULT_REWARD`.

    Raises:
        ConfigError: both given with different values, or an unknown kind.
    """
    if old is not None:
        deprecated(repr(old_name), repr(what), stacklevel=3)
        if reward is not None and reward != old:
            raise ConfigError(
                f"{what} {reward!r} and its deprecated name {old_name} {old!r} disagree; "
                f"pass only {what}."
            )
        reward = old
    return check_reward_kind(DEFAULT_REWARD if reward is None else reward, what=what)
