"""Evaluation rows whose prompt the model trained or validated on (issue: held-out claims)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from ebrm.errors import ConfigError

logger = logging.getLogger(__name__)


def _as_pairs(rows: Sequence[Any]) -> list:
    """Rows as preference pairs for `prompt_hash` (benchmark rows carry their `messages`)."""
    from ebrm.data.types import Conversation, PreferencePair

    pairs = []
    for row in rows:
        if isinstance(row, PreferencePair):
            pairs.append(row)
        elif hasattr(row, "messages"):
            conv = Conversation(tuple(row.messages), "")
            pairs.append(PreferencePair(conv, conv))
    return pairs


def check_overlap(model: Any, rows: Sequence[Any], *, data: str, strict: bool) -> int | None:
    """Warn (or with `strict` refuse) when evaluation prompts were seen in training.

    Returns:
        How many rows share a prompt with the model's training or validation pairs (None:
        the model records no prompts, so overlap cannot be checked).

    Raises:
        ConfigError: `strict` and some rows overlap, or `strict` and overlap is unknown.
    """
    pairs = _as_pairs(rows)
    seen = model.count_seen(pairs)
    if seen is None:
        message = (
            f"--model records no training prompts, so it is unknown whether --data {data} "
            "overlaps them (retrain with this ebrm to record them)"
        )
        if strict:
            raise ConfigError(f"{message}; --strict refuses.")
        logger.warning("warning: %s", message)
        return None
    if seen:
        message = (
            f"{seen} of {len(pairs)} rows of --data {data} have a prompt the model trained or "
            "validated on, so this evaluation is not held out (split the data first with "
            "`ebrm split`)"
        )
        if strict:
            raise ConfigError(f"{message}; --strict refuses.")
        logger.warning("warning: %s", message)
    return seen
