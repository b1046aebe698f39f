"""OpenRLHF's remote-reward wire format: decoded `prompt + response` strings to conversations.

OpenRLHF (`--remote_rm_url http://host:port/get_reward`) posts
`{"query": [...], "prompts": [...], "labels": [...]}` where each query is the policy's
decoded sequence with special tokens kept (left padding, the chat template, the EOS
token) and `prompts[i]` is the templated prompt text. The response is what follows the
prompt; the prompt's chat template (ChatML or Llama-3) is parsed back into messages so the
base RM can apply its own template.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from ebrm.data.types import Conversation
from ebrm.integrations._common import clean_text

DEFAULT_SPECIAL_TOKENS: tuple[str, ...] = (
    "<|im_end|>",
    "<|im_start|>",
    "<|endoftext|>",
    "<|end_of_text|>",
    "<|begin_of_text|>",
    "<|eot_id|>",
    "<|start_header_id|>",
    "<|end_header_id|>",
    "<|end|>",
    "<|pad|>",
    "<start_of_turn>",
    "<end_of_turn>",
    "</s>",
    "<s>",
    "<pad>",
    "<unk>",
    "<eos>",
    "<bos>",
    "[PAD]",
    "[CLS]",
    "[SEP]",
)
"""Policy special tokens removed from decoded text (`ServerConfig.special_tokens`)."""

_CHATML = re.compile(r"<\|im_start\|>([^\n<]+)\n(.*?)(?=<\|im_end\|>|<\|im_start\|>|\Z)", re.S)
_LLAMA3 = re.compile(
    r"<\|start_header_id\|>([^<]+)<\|end_header_id\|>\n\n(.*?)(?=<\|eot_id\|>|<\|start_header_id\|>|\Z)",
    re.S,
)
_ASSISTANT_HEADERS = (
    "<|im_start|>assistant\n",
    "<|start_header_id|>assistant<|end_header_id|>\n\n",
)


def strip_special(text: str, special_tokens: Sequence[str]) -> str:
    """Remove every occurrence of the special tokens."""
    for token in special_tokens:
        if token:
            text = text.replace(token, "")
    return text


def parse_prompt(prompt: str, special_tokens: Sequence[str]) -> tuple[tuple[str, str], ...]:
    """Messages of a templated prompt (ChatML or Llama-3), else one user turn of plain text."""
    for pattern in (_CHATML, _LLAMA3):
        turns = [
            (role.strip(), strip_special(content, special_tokens).strip())
            for role, content in pattern.findall(prompt)
        ]
        if turns:
            if turns[-1][0] == "assistant" and not turns[-1][1]:
                turns.pop()  # the generation prompt: an empty assistant header
            if turns:
                return tuple(turns)
    text = strip_special(prompt, special_tokens).strip()
    return (("user", text),)


def split_query(
    query: str, prompt: str | None, special_tokens: Sequence[str]
) -> tuple[str, str, bool]:
    """Split a decoded sequence into (prompt text, response text, prompt_found).

    The prompt is located in the query as given, then with special tokens removed from both;
    without a prompt the last assistant header of a known template marks the response.
    `prompt_found` is False when the prompt could not be located (then everything after
    their common prefix is taken as the response).
    """
    if prompt:
        at = query.find(prompt)
        if at >= 0:
            return prompt, query[at + len(prompt) :], True
        plain_query, plain_prompt = (
            strip_special(query, special_tokens),
            strip_special(prompt, special_tokens),
        )
        at = plain_query.find(plain_prompt)
        if at >= 0:
            return prompt, plain_query[at + len(plain_prompt) :], True
        common = 0
        for a, b in zip(plain_query, plain_prompt, strict=False):
            if a != b:
                break
            common += 1
        return prompt, plain_query[common:], False
    for header in _ASSISTANT_HEADERS:
        at = query.rfind(header)
        if at >= 0:
            return query[: at + len(header)], query[at + len(header) :], True
    return "", query, prompt is not None and prompt == ""


def query_to_conversation(
    query: str, prompt: str | None, special_tokens: Sequence[str]
) -> tuple[Conversation, bool]:
    """The conversation to score for one OpenRLHF query, and whether its prompt was found."""
    query, prompt = clean_text(query), clean_text(prompt) if prompt is not None else None
    prompt_text, response, found = split_query(query, prompt, special_tokens)
    # No prompt: an empty user turn keeps chat templates that require one happy.
    messages = parse_prompt(prompt_text, special_tokens) if prompt_text else (("user", ""),)
    response = strip_special(response, special_tokens).strip()
    return Conversation(messages=messages, response=response), found
