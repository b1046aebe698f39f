"""EBRM rewards for verl (`custom_reward_function.path=<this file>`, `.name=compute_score`).

verl calls `compute_score(data_source, solution_str, ground_truth, extra_info)` once per
response (its batch reward manager calls `compute_score_batch` with lists). The prompt is
taken from `extra_info` ("prompt", "question" or "query": a string or a message list) when
the dataset provides it; otherwise the response is scored after an empty user turn.

Backends, chosen by environment variables:
  * `EBRM_SERVER_URL` (e.g. http://127.0.0.1:8000, or a comma-separated list of
    replicas): post to running `ebrm serve` replicas (bearer token from `EBRM_TOKEN`,
    timeout `EBRM_TIMEOUT`, retries `EBRM_RETRIES`; see `ebrm.integrations._client`),
    which batch across all verl workers;
  * else `EBRM_MODEL`: a refined-model directory loaded once per process
    (device `EBRM_DEVICE`).
The reward is `EBRM_REWARD` (a `RewardKind`: refined, mean, conservative, base, ...;
default refined; the deprecated `EBRM_MODE` is read when it is unset).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from ebrm.data.types import Conversation
from ebrm.errors import ConfigError
from ebrm.integrations._client import client_from_env
from ebrm.integrations._common import (
    messages_from,
    reward_from_env,
    rewards_of,
    score_safely,
    scorer_from_env,
)

PROMPT_KEYS = ("prompt", "question", "query")


def _prompt_of(extra_info: Any) -> Any:
    if isinstance(extra_info, dict):
        for key in PROMPT_KEYS:
            if extra_info.get(key) is not None:
                return extra_info[key]
    return ""


def _conversation(solution_str: str, extra_info: Any) -> Conversation:
    prompt = _prompt_of(extra_info)
    return Conversation(messages=messages_from(prompt, "extra_info.prompt"), response=solution_str)


def compute_score_batch(
    data_sources: Sequence[Any],
    solution_strs: Sequence[str],
    ground_truths: Sequence[Any],
    extra_infos: Sequence[Any] | None = None,
    **kwargs: Any,
) -> list[float]:
    """Rewards for many responses at once (verl's `BatchRewardManager` interface)."""
    reward = reward_from_env()
    infos = list(extra_infos) if extra_infos is not None else [None] * len(solution_strs)
    if len(infos) != len(solution_strs):
        raise ConfigError(
            f"Got {len(solution_strs)} solutions but {len(infos)} extra_infos; "
            "pass one extra_info per solution."
        )
    convs = [_conversation(s, info) for s, info in zip(solution_strs, infos, strict=True)]
    if not convs:
        return []
    client = client_from_env()
    if client is not None:
        return client.score(convs, reward)
    batch_size = int(os.environ.get("EBRM_BATCH_SIZE", "16"))
    result = score_safely(scorer_from_env("EBRM_MODEL"), convs, batch_size=batch_size)
    return rewards_of(result, reward)


def compute_score(
    data_source: Any,
    solution_str: str,
    ground_truth: Any = None,
    extra_info: Any = None,
    **kwargs: Any,
) -> float:
    """One response's reward (verl's default reward-function signature)."""
    return compute_score_batch([data_source], [solution_str], [ground_truth], [extra_info])[0]
