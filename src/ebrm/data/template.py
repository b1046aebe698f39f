"""Turn a `Conversation` into the text a reward model scores.

With a tokenizer that has a chat template, the text is
``tokenizer.apply_chat_template(messages + [{"role": "assistant", "content": response}],
tokenize=False)``. If the template rejects a system turn (some templates do), the system text
is put in front of the first user turn and the template is applied again.

Otherwise the **plain template** (Anthropic HH-RLHF style) is used::

    {system}\\n\\nHuman: {user}\\n\\nAssistant: {assistant}...\\n\\nAssistant: {response}

System turns are joined with "\\n\\n" and rendered first, as a preamble without a prefix (no
preamble when there is no system turn). Other roles (e.g. "tool") are rendered as
``"\\n\\nTool: {content}"``. For HH-RLHF data this reproduces the original dialogue string
exactly, so a base RM trained on HH-RLHF sees the text it was trained on.
"""

from __future__ import annotations

import logging
from typing import Any

from ebrm.data.types import Conversation
from ebrm.errors import DataFormatError

logger = logging.getLogger(__name__)

_PLAIN_PREFIX = {"user": "Human", "assistant": "Assistant"}


def render_plain(conv: Conversation) -> str:
    """The plain HH-RLHF-style text of a conversation (see the module docstring)."""
    system = [content for role, content in conv.messages if role == "system"]
    parts = ["\n\n".join(system)]
    for role, content in conv.messages:
        if role != "system":
            parts.append(f"\n\n{_PLAIN_PREFIX.get(role, role.capitalize())}: {content}")
    parts.append(f"\n\nAssistant: {conv.response}")
    return "".join(parts)


def has_chat_template(tokenizer: Any) -> bool:
    """True when `tokenizer` carries a chat template."""
    return bool(getattr(tokenizer, "chat_template", None))


def _chat_messages(conv: Conversation) -> list[dict[str, str]]:
    return [{"role": role, "content": content} for role, content in conv.messages] + [
        {"role": "assistant", "content": conv.response}
    ]


def _merge_system(messages: list[dict[str, str]]) -> list[dict[str, str]]:
    """Move system text into the first user turn, for templates without a system role."""
    system = "\n\n".join(m["content"] for m in messages if m["role"] == "system")
    rest = [dict(m) for m in messages if m["role"] != "system"]
    for message in rest:
        if message["role"] == "user":
            message["content"] = f"{system}\n\n{message['content']}"
            return rest
    return [{"role": "user", "content": system}, *rest]


def format_conversation(conv: Conversation, tokenizer: Any = None) -> str:
    """The text to score for `conv`: the tokenizer's chat template, else the plain template.

    Args:
        conv: the conversation and its final assistant response.
        tokenizer: a Hugging Face tokenizer, or None for the plain template.

    Returns:
        One string (not tokenized).

    Raises:
        DataFormatError: the tokenizer's chat template rejects the conversation.
    """
    if tokenizer is None or not has_chat_template(tokenizer):
        return render_plain(conv)
    messages = _chat_messages(conv)
    try:
        return tokenizer.apply_chat_template(messages, tokenize=False)
    except Exception as exc:  # jinja raises TemplateError (or anything) from template code
        if not any(m["role"] == "system" for m in messages):
            raise DataFormatError(
                f"the tokenizer's chat template rejected a conversation ({exc}); "
                f"roles were {[m['role'] for m in messages]}."
            ) from exc
        logger.debug("chat template rejected a system turn (%s); merging it into user", exc)
        try:
            return tokenizer.apply_chat_template(_merge_system(messages), tokenize=False)
        except Exception as exc2:
            raise DataFormatError(
                f"the tokenizer's chat template rejected a conversation ({exc2}); "
                f"roles were {[m['role'] for m in messages]}."
            ) from exc2
