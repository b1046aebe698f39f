"""What every integration shares: the `Scorer` protocol, the reward a caller picks, input
conversion.

The integrations (TRL, HTTP server, verl, best-of-n) only need something with
`score(convs, *, batch_size) -> RefinedRewards`; `ebrm.model.EnergyRewardModel` is one,
and tests use small fakes.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from ebrm.data.types import Conversation
from ebrm.errors import ConfigError, DataFormatError
from ebrm.refine.kinds import RewardKind, resolve_reward

logger = logging.getLogger(__name__)


@runtime_checkable
class Scorer(Protocol):
    """Anything that scores conversations like `EnergyRewardModel.score`."""

    def score(self, convs: list[Conversation], *, batch_size: int = 16) -> Any:
        """Return a `RefinedRewards`-like object of (N,) tensors with `.reward_for(kind)`."""
        ...


def reward_from_env(environ: Mapping[str, str] | None = None) -> RewardKind:
    """The reward kind of `EBRM_REWARD` (default "refined"); the deprecated `EBRM_MODE` is
    still read, with a warning, when `EBRM_REWARD` is not set."""
    env = os.environ if environ is None else environ
    reward = env.get("EBRM_REWARD") or None
    old = None if reward is not None else env.get("EBRM_MODE") or None
    return resolve_reward(reward, old, old_name="EBRM_MODE", what="EBRM_REWARD")


def rewards_of(result: Any, reward: RewardKind) -> list[float]:
    """The `reward` column of a `RefinedRewards` (`reward_for`), as a list of floats."""
    return result.reward_for(reward).detach().float().cpu().tolist()


def score_safely(scorer: Scorer, convs: list[Conversation], *, batch_size: int) -> Any:
    """Score with autograd usable inside, even when the caller is in `inference_mode`.

    Grid refinement needs no gradients, but the paper's gradient-ascent refinement does; a
    caller such as TRL may hold `torch.inference_mode()`, whose tensors can never join
    autograd, so inference mode is switched off here and the scorer decides about grads.
    """
    import torch  # here, so that the server's options and text cleaning load without it

    with torch.inference_mode(False), torch.no_grad():
        return scorer.score(convs, batch_size=batch_size)


def clean_text(text: str) -> str:
    """Replace lone surrogates (valid in JSON, invalid UTF-8) so tokenizers never choke."""
    return text.encode("utf-8", "replace").decode("utf-8")


def _content_text(content: Any, where: str) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return clean_text(content)
    if isinstance(content, Sequence):  # multimodal-style list of parts: keep the text parts
        parts = []
        for part in content:
            if isinstance(part, str):
                parts.append(part)
            elif isinstance(part, Mapping) and part.get("type", "text") == "text":
                parts.append(str(part.get("text", "")))
        return clean_text("".join(parts))
    raise DataFormatError(
        f"{where}: message content must be a string or a list of text parts, "
        f"got {type(content).__name__}."
    )


def messages_from(value: Any, where: str) -> tuple[tuple[str, str], ...]:
    """A prompt as messages: a plain string is one user turn; a list holds message dicts."""
    if isinstance(value, str):
        return (("user", clean_text(value)),)
    if isinstance(value, Sequence):
        turns = []
        for i, message in enumerate(value):
            if isinstance(message, Mapping):
                role, content = message.get("role"), message.get("content")
            elif (
                isinstance(message, Sequence) and not isinstance(message, str) and len(message) == 2
            ):
                role, content = message
            else:
                raise DataFormatError(
                    f"{where}[{i}]: expected a message {{'role': ..., 'content': ...}}, "
                    f"got {type(message).__name__}."
                )
            if not isinstance(role, str):
                raise DataFormatError(f"{where}[{i}]: 'role' must be a string, got {role!r}.")
            turns.append((role, _content_text(content, f"{where}[{i}]")))
        return tuple(turns)
    raise DataFormatError(
        f"{where}: a prompt must be a string or a list of messages, got {type(value).__name__}."
    )


def completion_text(value: Any, where: str) -> str:
    """A completion as text: a string, or (TRL conversational) a list of assistant messages."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, Mapping):
        return _content_text(value.get("content"), where)
    if isinstance(value, Sequence):
        return "".join(content for _, content in messages_from(value, where))
    raise DataFormatError(
        f"{where}: a completion must be a string or a list of messages, got {type(value).__name__}."
    )


def to_conversation(prompt: Any, completion: Any, where: str = "item") -> Conversation:
    """Build the `Conversation` that the reward model scores."""
    return Conversation(
        messages=messages_from(prompt, f"{where}.prompt"),
        response=completion_text(completion, f"{where}.completion"),
    )


def load_scorer(path: str | os.PathLike, *, device: str | None = None) -> Scorer:
    """Load a refined-model directory (`EnergyRewardModel.from_pretrained`)."""
    from ebrm.model import EnergyRewardModel

    return EnergyRewardModel.from_pretrained(path, device=device)


_ENV_LOCK = threading.Lock()
_ENV_SCORERS: dict[tuple[str, str | None], Scorer] = {}


def scorer_from_env(var: str = "EBRM_MODEL") -> Scorer:
    """The model named by an environment variable, loaded once per process."""
    path = os.environ.get(var)
    if not path:
        raise ConfigError(
            f"Environment variable {var} is not set; set it to a refined-model directory "
            f"(written by `ebrm train`), e.g. export {var}=runs/ebrm-model."
        )
    device = os.environ.get("EBRM_DEVICE") or None
    key = (path, device)
    with _ENV_LOCK:
        if key not in _ENV_SCORERS:
            logger.info("loading EBRM model from %s (%s)", path, var)
            _ENV_SCORERS[key] = load_scorer(path, device=device)
        return _ENV_SCORERS[key]
