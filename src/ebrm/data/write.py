"""Preference pairs written back to a file that `load_pairs` reads unchanged."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

from ebrm._io import atomic_write_text
from ebrm.data.types import Conversation, PreferencePair


def _turns(conv: Conversation) -> list[dict[str, str]]:
    turns = [{"role": role, "content": content} for role, content in conv.messages]
    return [*turns, {"role": "assistant", "content": conv.response}]


def pair_row(pair: PreferencePair) -> dict:
    """One pair as a `messages`-layout row: full chat turns (response last), id, subset."""
    row: dict = {"id": pair.id, "chosen": _turns(pair.chosen), "rejected": _turns(pair.rejected)}
    if pair.subset is not None:
        row["subset"] = pair.subset
    return row


def write_pairs(path: str | os.PathLike, pairs: Iterable[PreferencePair]) -> Path:
    """Write `pairs` as JSON Lines in the `messages` layout, atomically.

    `load_pairs(path)` gives back the same conversations, ids and subsets (and so the same
    `prompt_hash` per pair).
    """
    text = "".join(json.dumps(pair_row(p), ensure_ascii=False) + "\n" for p in pairs)
    return atomic_write_text(path, text)
