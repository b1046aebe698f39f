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
