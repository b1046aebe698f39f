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
- ``reward-bench-2``: ``{"id", "prompt": str, "chosen": [str, ...], "rejected": [str, ...],
  "num_correct": int, "subset": str}`` — one RewardBench 2 row (best-of-4, or Ties).
"""

from __future__ import annotations

from typing import Any

from ebrm.data import _fields as F
from ebrm.data.hh_rlhf import parse_hh_rlhf, split_hh_dialogue
from ebrm.data.rmbench import parse_rmbench, rmbench_pairs
from ebrm.data.types import Conversation, Message, PreferencePair
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
    "reward-bench-2": '{"prompt": str, "chosen": [str, ...], "rejected": [str, ...], '
    '"num_correct": int, "subset": str} (RewardBench 2)',
}


def layouts_help() -> str:
    """A one-line-per-layout list for error messages."""
    return "\n".join(f"  - {name}: {shape}" for name, shape in LAYOUTS.items())


def detect_layout(row: Any) -> str | None:
    """The layout name of one row, or None when no supported layout matches."""
    if not isinstance(row, dict) or "chosen" not in row or "rejected" not in row:
        return None
    chosen, rejected, prompt = row["chosen"], row["rejected"], row.get("prompt")
    if "conversations" in row:
        return "sharegpt"
    if isinstance(chosen, list) and isinstance(rejected, list):
        items = chosen + rejected
        if "num_correct" in row and "prompt" in row:
            return "reward-bench-2"
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
        f"{location}: unknown row layout; found {F.describe_fields(row)}. "
        f"Supported layouts:\n{layouts_help()}"
    )


def parse_prompt_chosen_rejected(row: dict, location: str, default_id: str) -> PreferencePair:
    prompt = F.string(F.field(row, "prompt", location), "prompt", location)
    chosen = F.string(F.field(row, "chosen", location), "chosen", location)
    rejected = F.string(F.field(row, "rejected", location), "rejected", location)
    return PreferencePair(
        chosen=Conversation.from_prompt(prompt, chosen),
        rejected=Conversation.from_prompt(prompt, rejected),
        id=F.row_id(row, default_id),
        subset=F.subset(row, location),
        meta={"layout": "prompt-chosen-rejected"},
    )


def _completion(row: dict, side: str, prefix: list[Message], location: str) -> Conversation:
    """A `messages`-layout side: a message list, one message, or (after a prompt) a string."""
    value = F.field(row, side, location)
    if isinstance(value, str) and prefix:
        return Conversation(messages=tuple(prefix), response=value)
    turns = [F.message(value, side, location)] if isinstance(value, dict) else None
    if turns is None:
        turns = F.messages(value, side, location)
    if not turns or turns[-1][0] != "assistant":
        last = turns[-1][0] if turns else "nothing"
        raise DataFormatError(
            f"{location}: field {side!r} must end with an assistant message (the response), "
            f"but ends with {last}."
        )
    return Conversation(messages=tuple(prefix + turns[:-1]), response=turns[-1][1])


def parse_messages(row: dict, location: str, default_id: str) -> PreferencePair:
    prefix = F.prompt_messages(row, location)
    chosen = _completion(row, "chosen", prefix, location)
    rejected = _completion(row, "rejected", prefix, location)
    return PreferencePair(
        chosen=chosen,
        rejected=rejected,
        id=F.row_id(row, default_id),
        subset=F.subset(row, location),
        meta={"layout": "messages", "prompt_mismatch": chosen.messages != rejected.messages},
    )


def parse_sharegpt(row: dict, location: str, default_id: str) -> PreferencePair:
    prefix = F.messages(F.field(row, "conversations", location), "conversations", location)
    system = row.get("system")
    if system is not None and system != "":
        prefix.insert(0, ("system", F.string(system, "system", location)))
    sides = {}
    for side in ("chosen", "rejected"):
        value = F.field(row, side, location)
        if isinstance(value, str):
            response = F.string(value, side, location)
        else:
            role, response = F.message(value, side, location)
            if role != "assistant":
                raise DataFormatError(
                    f"{location}: field {side!r} must be an assistant turn "
                    f"(from 'gpt' or 'assistant'), got role {role!r}."
                )
        sides[side] = Conversation(messages=tuple(prefix), response=response)
    return PreferencePair(
        chosen=sides["chosen"],
        rejected=sides["rejected"],
        id=F.row_id(row, default_id),
        subset=F.subset(row, location),
        meta={"layout": "sharegpt"},
    )


PAIR_PARSERS = {
    "hh-rlhf": parse_hh_rlhf,
    "prompt-chosen-rejected": parse_prompt_chosen_rejected,
    "messages": parse_messages,
    "sharegpt": parse_sharegpt,
}

__all__ = [
    "LAYOUTS",
    "PAIR_PARSERS",
    "detect_layout",
    "parse_rmbench",
    "rmbench_pairs",
    "split_hh_dialogue",
    "unknown_layout_error",
]
