"""Splitting OpenRLHF's decoded `prompt + response` strings back into conversations."""

from __future__ import annotations

from ebrm.data.types import Conversation
from ebrm.integrations.openrlhf import (
    DEFAULT_SPECIAL_TOKENS,
    parse_prompt,
    query_to_conversation,
    strip_special,
)

TOKENS = DEFAULT_SPECIAL_TOKENS
CHATML = (
    "<|im_start|>system\nYou help.<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n"
    "<|im_start|>assistant\n"
)
LLAMA3 = (
    "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou help.<|eot_id|>"
    "<|start_header_id|>user<|end_header_id|>\n\nWhat is 2+2?<|eot_id|>"
    "<|start_header_id|>assistant<|end_header_id|>\n\n"
)
EXPECTED = Conversation(messages=(("system", "You help."), ("user", "What is 2+2?")), response="4.")


def test_chatml_with_left_padding_and_eos():
    query = "<|endoftext|>" * 3 + CHATML + "4.<|im_end|>\n<|endoftext|>"
    assert query_to_conversation(query, CHATML, TOKENS) == (EXPECTED, True)


def test_llama3_with_eot():
    query = LLAMA3 + "4.<|eot_id|>"
    assert query_to_conversation(query, LLAMA3, TOKENS) == (EXPECTED, True)


def test_no_prompt_given_uses_the_last_assistant_header():
    assert query_to_conversation(CHATML + "4.<|im_end|>", None, TOKENS) == (EXPECTED, True)
    conv, found = query_to_conversation("just text", None, TOKENS)
    assert conv == Conversation(messages=(("user", ""),), response="just text") and not found


def test_prompt_that_only_differs_by_special_tokens_is_found():
    # the policy's decode inserted a BOS the dataset prompt lacks
    conv, found = query_to_conversation("<s>Question: hi? Answer: yes</s>", "Question: hi?", TOKENS)
    assert found and conv == Conversation(
        messages=(("user", "Question: hi?"),), response="Answer: yes"
    )


def test_prompt_not_in_query_falls_back_to_common_prefix():
    conv, found = query_to_conversation("Question: hi? Answer: yes", "Question: ho?", TOKENS)
    assert not found and conv.response == "i? Answer: yes"


def test_plain_prompt_and_custom_tokens():
    assert parse_prompt("<bos>Hello<eos>", TOKENS) == (("user", "Hello"),)
    assert strip_special("a<END>b<END>", ["<END>", ""]) == "ab"
    conv, _ = query_to_conversation("P: x R: y<END>", "P: x", ["<END>"])
    assert conv.response == "R: y"
