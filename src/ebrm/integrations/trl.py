"""EBRM rewards as a TRL reward function (`GRPOTrainer(reward_funcs=...)`, RLOO, ...).

Example:
    >>> from trl import GRPOTrainer
    >>> from ebrm.integrations.trl import EBRMRewardFunction
    >>> reward = EBRMRewardFunction("runs/ebrm-model", reward="conservative")
    >>> trainer = GRPOTrainer(model=..., reward_funcs=[reward], ...)

Against one or several running `ebrm serve` replicas instead of a model in this process:
    >>> reward = EBRMRewardFunction(urls=["http://10.0.0.5:5000", "http://10.0.0.6:5000"],
    ...                             token="...", reward="conservative")

From the command line, `trl grpo --reward_funcs ebrm.integrations.trl.ebrm_reward` uses the
model in the environment variable `EBRM_MODEL` (reward from `EBRM_REWARD`, default "refined"),
or the servers in `EBRM_SERVER_URL` when it is set (see `ebrm.integrations._client`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any

from ebrm.errors import ConfigError
from ebrm.integrations._client import RewardClient, client_from_env
from ebrm.integrations._common import (
    Scorer,
    load_scorer,
    reward_from_env,
    rewards_of,
    score_safely,
    scorer_from_env,
    to_conversation,
)
from ebrm.refine.kinds import deprecated, resolve_reward
from ebrm.rm.names import DEFAULT_BATCH_SIZE

logger = logging.getLogger(__name__)


class EBRMRewardFunction:
    """A picklable TRL reward function: `(prompts, completions, **kwargs) -> list[float]`.

    Args:
        model_or_path: a refined-model directory, or an already loaded scorer
            (`EnergyRewardModel` or anything with `score(convs, *, batch_size)`); leave it
            out when `urls` is given.
        reward: which reward to return (a `RewardKind`): "refined" (the model's configured
            refinement, the default), "mean" (posterior mean), "conservative"
            (mean - k*spread, against reward hacking), "base" (the frozen base RM,
            normalised), or a stored reference ("laplace", "laplace_lcb", ...).
        batch_size: responses per forward pass of the base RM.
        device: torch device for a model loaded from a path (default: CUDA if available).
        mode: the deprecated name of `reward` (warns).
        urls: instead of a model, the base URL(s) of running `ebrm serve` replicas: one
            URL, a comma-separated list, a list, or a `RewardClient` to share. Requests
            spread over the replicas, with a timeout and retries elsewhere when one fails
            (`ebrm.integrations._client`).
        token: the servers' bearer token (`ebrm serve --token`), sent to every replica.
        timeout: seconds one request to a server may take.
        max_retries: tries after the first, on other replicas, before giving up.

    Prompts and completions may be plain strings or, for conversational datasets, lists of
    message dicts (`[{"role": "assistant", "content": ...}]`), as TRL passes them.
    Rewards are in the model's normalised units (the base RM's rewards have mean 0 and
    scale 4 over its training responses).
    """

    def __init__(
        self,
        model_or_path: Scorer | str | os.PathLike | None = None,
        *,
        reward: str | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        device: str | None = None,
        mode: str | None = None,
        urls: str | Sequence[str] | RewardClient | None = None,
        token: str | None = None,
        timeout: float = 180.0,
        max_retries: int = 3,
    ) -> None:
        self.reward = resolve_reward(reward, mode)
        if batch_size < 1:
            raise ValueError(f"batch_size must be an int >= 1. Got {batch_size} instead.")
        self.batch_size = batch_size
        self.device = device
        if (model_or_path is None) == (urls is None):
            raise ConfigError(
                "EBRMRewardFunction needs a model (a refined-model directory or a scorer) or "
                "urls= (running `ebrm serve` replicas), not both and not neither."
            )
        self.client: RewardClient | None = None
        if urls is not None:
            self.client = (
                urls
                if isinstance(urls, RewardClient)
                else RewardClient(urls, token=token, timeout=timeout, max_retries=max_retries)
            )
            self.path, self._scorer = None, None
        elif isinstance(model_or_path, str | os.PathLike):
            self.path: str | None = os.fspath(model_or_path)
            self._scorer: Scorer | None = None  # loaded on first call (cheap to pickle)
        else:
            self.path = None
            self._scorer = model_or_path
        # TRL names the logged metric `rewards/<__name__>/mean`.
        self.__name__ = f"ebrm_{self.reward}"
        self.calls = 0  # number of __call__s, for logging and tests

    @property
    def mode(self) -> str:
        """Deprecated name of `reward`."""
        deprecated("EBRMRewardFunction.mode", "EBRMRewardFunction.reward")
        return self.reward

    @property
    def scorer(self) -> Scorer:
        if self._scorer is None:
            assert self.path is not None
            self._scorer = load_scorer(self.path, device=self.device)
        return self._scorer

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        if self.path is not None:
            state["_scorer"] = None  # a worker process reloads the model from its path
        return state

    def __repr__(self) -> str:
        if self.client is not None:
            return f"EBRMRewardFunction(urls={list(self.client.urls)!r}, reward={self.reward!r})"
        source = self.path if self.path is not None else type(self._scorer).__name__
        return (
            f"EBRMRewardFunction({source!r}, reward={self.reward!r}, batch_size={self.batch_size})"
        )

    def __call__(self, prompts: list[Any], completions: list[Any], **kwargs: Any) -> list[float]:
        """One reward per (prompt, completion); extra TRL keyword arguments are ignored."""
        if len(prompts) != len(completions):
            raise ValueError(
                f"Got {len(prompts)} prompts but {len(completions)} completions; "
                "the reward function needs one prompt per completion."
            )
        self.calls += 1
        if not completions:
            return []
        convs = [
            to_conversation(p, c, f"completion {i}")
            for i, (p, c) in enumerate(zip(prompts, completions, strict=True))
        ]
        if self.client is not None:
            return self.client.score(convs, self.reward)
        result = score_safely(self.scorer, convs, batch_size=self.batch_size)
        return rewards_of(result, self.reward)


class _EnvRewardFunction:
    """The TRL reward function loadable by dotted path: `ebrm.integrations.trl.ebrm_reward`.

    With `EBRM_SERVER_URL` set (one URL or a comma-separated list of `ebrm serve`
    replicas; `EBRM_TOKEN`, `EBRM_TIMEOUT`, `EBRM_RETRIES`), the servers score. Otherwise
    the model directory comes from `EBRM_MODEL`, the reward from `EBRM_REWARD` (default
    "refined"; the deprecated `EBRM_MODE` is read when it is unset), the device from
    `EBRM_DEVICE` and the batch size from `EBRM_BATCH_SIZE` (default 16). The model is
    loaded once per process, on the first call. TRL logs it as `rewards/ebrm_<reward>/mean`
    (its `__name__` follows `EBRM_REWARD`), like
    `EBRMRewardFunction`.
    """

    @property
    def __name__(self) -> str:  # read by TRL when it names the logged metric
        return f"ebrm_{reward_from_env()}"

    def __repr__(self) -> str:
        return "ebrm.integrations.trl.ebrm_reward"

    def __call__(self, prompts: list[Any], completions: list[Any], **kwargs: Any) -> list[float]:
        reward = reward_from_env()
        client = client_from_env()
        if client is not None:
            return EBRMRewardFunction(urls=client, reward=reward)(prompts, completions, **kwargs)
        batch_size = int(os.environ.get("EBRM_BATCH_SIZE", str(DEFAULT_BATCH_SIZE)))
        scorer = scorer_from_env("EBRM_MODEL")
        function = EBRMRewardFunction(scorer, reward=reward, batch_size=batch_size)
        return function(prompts, completions, **kwargs)


ebrm_reward = _EnvRewardFunction()
