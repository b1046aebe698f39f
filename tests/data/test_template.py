"""format_conversation: the tokenizer's chat template, else the documented plain template."""

from __future__ import annotations

import pytest
from transformers import AutoTokenizer

from ebrm.data import Conversation, format_conversation
from ebrm.errors import DataFormatError
from tests.tiny_models import minilm_path

CONV = Conversation(
    messages=(("system", "be kind"), ("user", "hi"), ("assistant", "hello"), ("user", "why?")),
    response="because",
)
SIMPLE = "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}\n{% endfor %}"
NO_SYSTEM = (
    "{% for m in messages %}{% if m['role'] == 'system' %}"
    "{{ raise_exception('System role not supported') }}{% endif %}"
    "[{{ m['role'] }}]{{ m['content'] }}{% endfor %}"
)


@pytest.fixture(scope="module")
def tokenizer():
    return AutoTokenizer.from_pretrained(minilm_path())


def test_plain_template_without_tokenizer():
    expected = "be kind\n\nHuman: hi\n\nAssistant: hello\n\nHuman: why?\n\nAssistant: because"
    assert format_conversation(CONV) == expected
    assert format_conversation(Conversation.from_prompt("q", "a")) == "\n\nHuman: q\n\nAssistant: a"


def test_plain_template_for_a_tokenizer_without_chat_template(tokenizer):
    assert not getattr(tokenizer, "chat_template", None)
    assert format_conversation(CONV, tokenizer) == format_conversation(CONV)


def test_chat_template_of_the_tokenizer(tokenizer):
    tokenizer.chat_template = SIMPLE
    try:
        turns = [*CONV.messages, ("assistant", CONV.response)]
        expected = "".join(f"<|{role}|>{content}\n" for role, content in turns)
        assert format_conversation(CONV, tokenizer) == expected
    finally:
        tokenizer.chat_template = None


def test_template_without_system_role_gets_system_merged_into_user(tokenizer):
    tokenizer.chat_template = NO_SYSTEM
    try:
        expected = "[user]be kind\n\nhi[assistant]hello[user]why?[assistant]because"
        assert format_conversation(CONV, tokenizer) == expected
        single = Conversation.from_prompt("q", "a")
        assert format_conversation(single, tokenizer) == "[user]q[assistant]a"
    finally:
        tokenizer.chat_template = None


def test_template_errors_become_data_format_errors(tokenizer):
    tokenizer.chat_template = "{{ raise_exception('roles must alternate') }}"
    try:
        with pytest.raises(DataFormatError, match="roles must alternate"):
            format_conversation(Conversation.from_prompt("q", "a"), tokenizer)
    finally:
        tokenizer.chat_template = None
