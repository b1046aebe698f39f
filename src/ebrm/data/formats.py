"""Row layouts of preference data: detection and conversion to `PreferencePair` / `RMBenchItem`.

Supported layouts (detected per row from its fields; one file must use one layout):

- ``hh-rlhf``: ``{"chosen": str, "rejected": str}``, each a whole Anthropic HH-RLHF dialogue
  ``"\\n\\nHuman: ...\\n\\nAssistant: ..."``. Text before the first turn marker becomes a
  system turn. The last ``"\\n\\nAssistant: "`` turn is the response. Chosen and rejected keep
  their own turns, so pairs whose dialogues differ before the response are kept (and counted).
- ``prompt-chosen-rejected``: ``{"prompt": str, "chosen": str, "rejected": str}`` plus optional
  ``"id"`` and ``"subset"`` (this is RewardBench v1's schema).
- ``messages``: ``chosen`` / ``rejected`` as OpenAI-style lists of ``{"role", "content"}`` whose
  last turn is the assistant response; an optional ``"prompt"`` (str or message list) is put in
  front. With a message-list ``prompt``, ``chosen`` / ``rejected`` may also be plain strings.
- ``sharegpt``: ``{"conversations": [{"from", "value"}, ...], "chosen": {"from", "value"},
  "rejected": {...}}`` as in LLaMA-Factory (optional ``"system"`` string).
- ``rm-bench``: ``{"id", "prompt": str, "chosen": [3 str], "rejected": [3 str], "subset" or
  "domain"}`` — one RM-Bench prompt with responses in three styles.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ebrm.data.types import Conversation, Message, PreferencePair, RMBenchItem
from ebrm.errors import DataFormatError

LAYOUTS: dict[str, str] = {
    "hh-rlhf": '{"chosen": "\\n\\nHuman: ...\\n\\nAssistant: ...", "rejected": "..."}',
    "prompt-chosen-rejected": '{"prompt": str, "chosen": str, "rejected": str} '
    '(optional "id", "subset"; RewardBench v1)',
    "messages": '{"chosen": [{"role", "content"}, ...], "rejected": [...]} '
    '(optional "prompt": str or message list)',
    "sharegpt": '{"conversations": [{"from", "value"}, ...], "chosen": {"from", "value"}, '
    '"rejected": {"from", "value"}} (ShareGPT / LLaMA-Factory)',
    "rm-bench": '{"prompt": str, "chosen": [3 str], "rejected": [3 str], "subset" or "domain"}',
}

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
_HH_MARKER = re.compile(r"(?:\A|\n\n)(Human|Assistant):(?: |\Z)")

# RM-Bench sub-domains; safety-refuse and safety-response pool into the "safety" domain.
RMBENCH_SUBSETS = ("chat", "code", "math", "safety-refuse", "safety-response")
# Source subsets (RewardBench names) seen in RM-Bench files, for rows without a domain field.
_RMBENCH_SOURCE_PREFIXES = (
    ("alpacaeval", "chat"),
    ("mt-bench", "chat"),
    ("llmbar", "chat"),
    ("hep-", "code"),
    ("math", "math"),
    ("xstest-should-respond", "safety-response"),
    ("xstest-should-refuse", "safety-refuse"),
    ("donotanswer", "safety-refuse"),
    ("refusals", "safety-refuse"),
)


def layouts_help() -> str:
    """A one-line-per-layout list for error messages."""
    return "\n".join(f"  - {name}: {shape}" for name, shape in LAYOUTS.items())


def describe_fields(row: Any) -> str:
    """The fields of a row with their JSON types, e.g. "chosen (str), rejected (list)"."""
    if not isinstance(row, dict):
        return f"a {_type_name(row)} instead of an object"
    if not row:
        return "no fields"
    return ", ".join(f"{key} ({_type_name(value)})" for key, value in list(row.items())[:20])


def _type_name(value: Any) -> str:
    names = {str: "str", list: "list", dict: "object", bool: "bool", type(None): "null"}
    return names.get(type(value), type(value).__name__)


def detect_layout(row: Any) -> str | None:
    """The layout name of one row, or None when no supported layout matches."""
    if not isinstance(row, dict) or "chosen" not in row or "rejected" not in row:
        return None
    chosen, rejected, prompt = row["chosen"], row["rejected"], row.get("prompt")
    if "conversations" in row:
        return "sharegpt"
    if isinstance(chosen, list) and isinstance(rejected, list):
        items = chosen + rejected
        if items and all(isinstance(x, str) for x in items) and "prompt" in row:
            return "rm-bench"
        if any(isinstance(x, dict) for x in items):
            return "messages"
        return None
    if isinstance(prompt, list) or isinstance(chosen, dict):
        return "messages"
    if isinstance(chosen, str) and isinstance(rejected, str):
        return "prompt-chosen-rejected" if "prompt" in row else "hh-rlhf"
    return None


def unknown_layout_error(location: str, row: Any) -> DataFormatError:
    return DataFormatError(
        f"{location}: unknown row layout; found {describe_fields(row)}. "
        f"Supported layouts:\n{layouts_help()}"
    )


# ---------------------------------------------------------------- field helpers


def _field(row: dict, name: str, location: str) -> Any:
    if name not in row:
        raise DataFormatError(f"{location}: missing field {name!r} (found {describe_fields(row)}).")
    return row[name]


def _string(value: Any, field: str, location: str) -> str:
    if not isinstance(value, str):
        raise DataFormatError(
            f"{location}: field {field!r} must be a string, got {_type_name(value)}."
        )
    if _SURROGATE.search(value):
        raise DataFormatError(
            f"{location}: field {field!r} holds a lone UTF-16 surrogate (a \\udXXX escape), "
            "which is not valid Unicode. Fix the text encoding of the source."
        )
    return value


def _row_id(row: dict, default: str) -> str:
    value = row.get("id")
    if isinstance(value, (str, int)) and not isinstance(value, bool):
        return str(value)
    return default


def _subset(row: dict, location: str) -> str | None:
    value = row.get("subset")
    return None if value is None else _string(value, "subset", location)


def _message(turn: Any, field: str, location: str) -> Message:
    """One turn given as {"role", "content"} or {"from", "value"}."""
    if not isinstance(turn, dict):
        raise DataFormatError(
            f"{location}: {field} must be a message object, got {_type_name(turn)}."
        )
    role_key, content_key = ("role", "content") if "role" in turn else ("from", "value")
    role = turn.get(role_key)
    if not isinstance(role, str) or role.lower() not in ROLES:
        raise DataFormatError(
            f"{location}: {field} has role {role!r} (keys {sorted(turn)}); expected "
            f"'role' or 'from' with one of {sorted(ROLES)}."
        )
    content = turn.get(content_key)
    return ROLES[role.lower()], _string(content, f"{field}.{content_key}", location)


def _messages(turns: Any, field: str, location: str) -> list[Message]:
    if not isinstance(turns, list):
        raise DataFormatError(
            f"{location}: field {field!r} must be a list of messages, got {_type_name(turns)}."
        )
    return [_message(turn, f"{field}[{i}]", location) for i, turn in enumerate(turns)]


def _prompt_messages(row: dict, location: str) -> list[Message]:
    prompt = row.get("prompt")
    if prompt is None:
        return []
    if isinstance(prompt, str):
        return [("user", prompt)]
    return _messages(prompt, "prompt", location)


# ---------------------------------------------------------------- HH-RLHF


def split_hh_dialogue(text: str) -> tuple[tuple[Message, ...], str]:
    """Split an HH-RLHF dialogue into its turns before the response, and the response.

    Joining the result with the plain template (`ebrm.data.template.render_plain`) gives back
    `text` exactly when every turn marker is "\\n\\nHuman: " / "\\n\\nAssistant: " (as in the
    released data).

    Raises:
        ValueError: no turn markers, or the dialogue does not end with an assistant turn.
    """
    matches = list(_HH_MARKER.finditer(text))
    if not matches:
        raise ValueError("has no '\\n\\nHuman: ' / '\\n\\nAssistant: ' turns")
    turns: list[Message] = []
    if matches[0].start() > 0:
        turns.append(("system", text[: matches[0].start()]))
    for match, following in zip(matches, [*matches[1:], None], strict=True):
        end = following.start() if following is not None else len(text)
        role = "user" if match.group(1) == "Human" else "assistant"
        turns.append((role, text[match.end() : end]))
    if turns[-1][0] != "assistant":
        raise ValueError("does not end with an '\\n\\nAssistant: ' turn")
    return tuple(turns[:-1]), turns[-1][1]


def parse_hh_rlhf(row: dict, location: str, default_id: str) -> PreferencePair:
    sides = {}
    for side in ("chosen", "rejected"):
        text = _string(_field(row, side, location), side, location)
        try:
            messages, response = split_hh_dialogue(text)
        except ValueError as exc:
            raise DataFormatError(
                f"{location}: field {side!r} is not an HH-RLHF dialogue: it {exc}. "
                f"Starts with {text[:60]!r}."
            ) from exc
        sides[side] = Conversation(messages=messages, response=response)
    mismatch = sides["chosen"].messages != sides["rejected"].messages
    return PreferencePair(
        chosen=sides["chosen"],
        rejected=sides["rejected"],
        id=_row_id(row, default_id),
        subset=_subset(row, location),
        meta={"layout": "hh-rlhf", "prompt_mismatch": mismatch},
    )


# ---------------------------------------------------------------- other pair layouts


def parse_prompt_chosen_rejected(row: dict, location: str, default_id: str) -> PreferencePair:
    prompt = _string(_field(row, "prompt", location), "prompt", location)
    chosen = _string(_field(row, "chosen", location), "chosen", location)
    rejected = _string(_field(row, "rejected", location), "rejected", location)
    return PreferencePair(
        chosen=Conversation.from_prompt(prompt, chosen),
        rejected=Conversation.from_prompt(prompt, rejected),
        id=_row_id(row, default_id),
        subset=_subset(row, location),
        meta={"layout": "prompt-chosen-rejected"},
    )


def _completion(row: dict, side: str, prefix: list[Message], location: str) -> Conversation:
    """A `messages`-layout side: a message list, one message, or (after a prompt) a string."""
    value = _field(row, side, location)
    if isinstance(value, str) and prefix:
        return Conversation(messages=tuple(prefix), response=value)
    turns = [_message(value, side, location)] if isinstance(value, dict) else None
    if turns is None:
        turns = _messages(value, side, location)
    if not turns or turns[-1][0] != "assistant":
        last = turns[-1][0] if turns else "nothing"
        raise DataFormatError(
            f"{location}: field {side!r} must end with an assistant message (the response), "
            f"but ends with {last}."
        )
    return Conversation(messages=tuple(prefix + turns[:-1]), response=turns[-1][1])


def parse_messages(row: dict, location: str, default_id: str) -> PreferencePair:
    prefix = _prompt_messages(row, location)
    chosen = _completion(row, "chosen", prefix, location)
    rejected = _completion(row, "rejected", prefix, location)
    return PreferencePair(
        chosen=chosen,
        rejected=rejected,
        id=_row_id(row, default_id),
        subset=_subset(row, location),
        meta={"layout": "messages", "prompt_mismatch": chosen.messages != rejected.messages},
    )


def parse_sharegpt(row: dict, location: str, default_id: str) -> PreferencePair:
    prefix = _messages(_field(row, "conversations", location), "conversations", location)
    system = row.get("system")
    if system is not None and system != "":
        prefix.insert(0, ("system", _string(system, "system", location)))
    sides = {}
    for side in ("chosen", "rejected"):
        value = _field(row, side, location)
        if isinstance(value, str):
            response = _string(value, side, location)
        else:
            role, response = _message(value, side, location)
            if role != "assistant":
                raise DataFormatError(
                    f"{location}: field {side!r} must be an assistant turn "
                    f"(from 'gpt' or 'assistant'), got role {role!r}."
                )
        sides[side] = Conversation(messages=tuple(prefix), response=response)
    return PreferencePair(
        chosen=sides["chosen"],
        rejected=sides["rejected"],
        id=_row_id(row, default_id),
        subset=_subset(row, location),
        meta={"layout": "sharegpt"},
    )


# ---------------------------------------------------------------- RM-Bench


def rmbench_subset(row: dict, location: str, source: str | None) -> str:
    """The RM-Bench sub-domain of a row: chat, code, math, safety-refuse or safety-response.

    Taken from, in order: the row's "domain" field (hub dataset), its "subset" field when that
    is a sub-domain name, the file name (e.g. "safety-response_filtered.json"), and finally
    the RewardBench source subset (e.g. "alpacaeval" -> chat).
    """
    candidates = [row.get("domain"), row.get("subset")]
    for value in candidates:
        if isinstance(value, str) and value.lower() in RMBENCH_SUBSETS:
            return value.lower()
    if source:
        stem = Path(source).name.lower()
        for name in sorted(RMBENCH_SUBSETS, key=len, reverse=True):
            if stem.startswith(name):
                return name
    subset = row.get("subset")
    if isinstance(subset, str):
        for prefix, name in _RMBENCH_SOURCE_PREFIXES:
            if subset.lower().startswith(prefix):
                return name
    raise DataFormatError(
        f"{location}: cannot tell the RM-Bench domain (domain={row.get('domain')!r}, "
        f"subset={row.get('subset')!r}). Add a 'domain' field with one of {RMBENCH_SUBSETS} "
        "or keep RM-Bench's file names (e.g. chat_filtered.json)."
    )


def parse_rmbench(
    row: dict, location: str, default_id: str, source: str | None = None
) -> RMBenchItem:
    prompt = _field(row, "prompt", location)
    if isinstance(prompt, str):
        messages: tuple[Message, ...] = (("user", prompt),)
    else:
        messages = tuple(_messages(prompt, "prompt", location))
    responses = {}
    for side in ("chosen", "rejected"):
        value = _field(row, side, location)
        if not isinstance(value, list) or len(value) != 3:
            raise DataFormatError(
                f"{location}: field {side!r} must be a list of 3 strings (concise, detailed, "
                f"markdown), got {_type_name(value)}"
                + (f" of length {len(value)}." if isinstance(value, list) else ".")
            )
        responses[side] = tuple(_string(v, f"{side}[{i}]", location) for i, v in enumerate(value))
    subset = rmbench_subset(row, location, source)
    return RMBenchItem(
        id=_row_id(row, default_id),
        domain="safety" if subset.startswith("safety") else subset,
        subset=subset,
        messages=messages,
        chosen=responses["chosen"],
        rejected=responses["rejected"],
    )


def rmbench_pairs(item: RMBenchItem) -> list[PreferencePair]:
    """The 9 pairs chosen[i] vs rejected[j] of one RM-Bench item (i, j = style index)."""
    return [
        PreferencePair(
            chosen=Conversation(messages=item.messages, response=item.chosen[i]),
            rejected=Conversation(messages=item.messages, response=item.rejected[j]),
            id=f"{item.id}:c{i}r{j}",
            subset=item.subset,
            meta={
                "layout": "rm-bench",
                "domain": item.domain,
                "chosen_style": i,
                "rejected_style": j,
                "rmbench_id": item.id,
            },
        )
        for i in range(3)
        for j in range(3)
    ]


PAIR_PARSERS = {
    "hh-rlhf": parse_hh_rlhf,
    "prompt-chosen-rejected": parse_prompt_chosen_rejected,
    "messages": parse_messages,
    "sharegpt": parse_sharegpt,
}
