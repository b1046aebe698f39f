"""Field access for row parsers: every failure is a `DataFormatError` naming row and field."""

from __future__ import annotations

import re
from typing import Any

from ebrm.data.types import Message
from ebrm.errors import DataFormatError

# Role names used by ShareGPT / OpenAI-style data, mapped onto ours.
ROLES = {
    "system": "system",
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "model": "assistant",
    "bot": "assistant",
    "chatgpt": "assistant",
    "function_call": "assistant",
    "observation": "tool",
    "tool": "tool",
    "function": "tool",
}

# Lone UTF-16 surrogates ("\\ud800" escapes in JSON) are not valid Unicode and break tokenizers.
_SURROGATE = re.compile("[\ud800-\udfff]")


def describe_fields(row: Any) -> str:
    """The fields of a row with their JSON types, e.g. "chosen (str), rejected (list)"."""
    if not isinstance(row, dict):
        return f"a {type_name(row)} instead of an object"
    if not row:
        return "no fields"
    return ", ".join(f"{key} ({type_name(value)})" for key, value in list(row.items())[:20])


def type_name(value: Any) -> str:
    names = {str: "str", list: "list", dict: "object", bool: "bool", type(None): "null"}
    return names.get(type(value), type(value).__name__)


def field(row: dict, name: str, location: str) -> Any:
    if name not in row:
        raise DataFormatError(f"{location}: missing field {name!r} (found {describe_fields(row)}).")
    return row[name]


def string(value: Any, field: str, location: str) -> str:
    if not isinstance(value, str):
        raise DataFormatError(
            f"{location}: field {field!r} must be a string, got {type_name(value)}."
        )
    if _SURROGATE.search(value):
        raise DataFormatError(
            f"{location}: field {field!r} holds a lone UTF-16 surrogate (a \\udXXX escape), "
            "which is not valid Unicode. Fix the text encoding of the source."
        )
    return value


def row_id(row: dict, default: str) -> str:
    value = row.get("id")
    if isinstance(value, (str, int)) and not isinstance(value, bool):
        return str(value)
    return default


def subset(row: dict, location: str) -> str | None:
    value = row.get("subset")
    return None if value is None else string(value, "subset", location)


def message(turn: Any, field: str, location: str) -> Message:
    """One turn given as {"role", "content"} or {"from", "value"}."""
    if not isinstance(turn, dict):
        raise DataFormatError(
            f"{location}: {field} must be a message object, got {type_name(turn)}."
        )
    role_key, content_key = ("role", "content") if "role" in turn else ("from", "value")
    role = turn.get(role_key)
    if not isinstance(role, str) or role.lower() not in ROLES:
        raise DataFormatError(
            f"{location}: {field} has role {role!r} (keys {sorted(turn)}); expected "
            f"'role' or 'from' with one of {sorted(ROLES)}."
        )
    content = turn.get(content_key)
    return ROLES[role.lower()], string(content, f"{field}.{content_key}", location)


def messages(turns: Any, field: str, location: str) -> list[Message]:
    if not isinstance(turns, list):
        raise DataFormatError(
            f"{location}: field {field!r} must be a list of messages, got {type_name(turns)}."
        )
    return [message(turn, f"{field}[{i}]", location) for i, turn in enumerate(turns)]


def prompt_messages(row: dict, location: str) -> list[Message]:
    prompt = row.get("prompt")
    if prompt is None:
        return []
    if isinstance(prompt, str):
        return [("user", string(prompt, "prompt", location))]
    return messages(prompt, "prompt", location)
