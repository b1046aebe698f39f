"""The names of "which reward": one `RewardKind` per per-response reward, without torch.

`RefinedRewards.reward_for` reads a kind's values, and every option, keyword, request field
and environment variable that picks a reward takes one of these names (the CLI offers them
as choices before torch loads).
"""

from __future__ import annotations

from typing import Literal, get_args

from ebrm.errors import ConfigError

RewardKind = Literal[
    "refined", "mean", "mode", "median", "conservative", "base",
    "laplace", "laplace-conservative", "ensemble", "ensemble-conservative",
]  # fmt: skip
"""Which per-response reward a caller uses: the configured refinement, the posterior mean,
mode or median, the uncertainty-penalised `mean - k*spread`, the frozen base RM's reward
(all in normalised units), or a reference stored with the model (`ebrm.references`: the
Laplace or ensemble BT head's mean, or its `mean - k*std`, in its own log-odds units).
Every option, request field and environment variable that picks a reward takes one of
these names."""

REWARD_KINDS: tuple[RewardKind, ...] = get_args(RewardKind)
#: the kinds a model has only when `ebrm train` stored references with it
REFERENCE_KINDS: tuple[str, ...] = REWARD_KINDS[6:]

# The `RefinedRewards` field (or `references` key) holding each kind (others: field names).
_FIELD = {
    "refined": "reward",
    "median": "q50",
    "laplace-conservative": "laplace_conservative",
    "ensemble-conservative": "ensemble_conservative",
}


def check_reward_kind(kind: str, *, what: str = "reward kind") -> RewardKind:
    """`kind` as a `RewardKind`, or a `ConfigError` naming the choices (`what` names the option)."""
    if kind not in REWARD_KINDS:
        raise ConfigError(f"Unknown {what} {kind!r}; choose one of {', '.join(REWARD_KINDS)}.")
    return kind  # type: ignore[return-value]


DEFAULT_REWARD: RewardKind = "refined"  # what every option and keyword picks unless told
