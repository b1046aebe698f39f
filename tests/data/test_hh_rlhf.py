"""HH-RLHF dialogues: splitting into turns and response, exact round trip."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ebrm.data import Conversation, load_pairs
from ebrm.data.hh_rlhf import split_hh_dialogue
from ebrm.data.template import render_plain
from ebrm.errors import DataFormatError
from tests.data._files import write_rows


def _load_one(tmp_path, row):
    return load_pairs(str(write_rows(tmp_path / "d.jsonl", [row])))[0]


def test_hh_rlhf_dialogues(tmp_path):
    row = {
        "chosen": "\n\nHuman: hi\n\nAssistant: hello\n\nHuman: how?\n\nAssistant: like this",
        "rejected": "\n\nHuman: hi\n\nAssistant: hello\n\nHuman: how?\n\nAssistant: no",
    }
    pair = _load_one(tmp_path, row)
    turns = (("user", "hi"), ("assistant", "hello"), ("user", "how?"))
    assert pair.chosen == Conversation(turns, "like this")
    assert pair.rejected == Conversation(turns, "no")
    assert pair.meta["prompt_mismatch"] is False
    assert pair.id == "d.jsonl:1"


def test_hh_rlhf_pair_that_differs_earlier_is_kept_and_flagged(tmp_path):
    row = {
        "chosen": "\n\nHuman: hi\n\nAssistant: hello\n\nHuman: ok\n\nAssistant: a",
        "rejected": "\n\nHuman: hi\n\nAssistant: go away\n\nHuman: ok\n\nAssistant: b",
    }
    pair = _load_one(tmp_path, row)
    assert pair.chosen.messages[1] == ("assistant", "hello")
    assert pair.rejected.messages[1] == ("assistant", "go away")
    assert pair.meta["prompt_mismatch"] is True


def test_hh_rlhf_without_final_assistant_turn(tmp_path):
    row = {"chosen": "\n\nHuman: hi\n\nAssistant: a\n\nHuman: and?", "rejected": "\n\nHuman: x"}
    with pytest.raises(DataFormatError, match=r"line 1: field 'chosen' is not an HH-RLHF"):
        _load_one(tmp_path, row)


def test_hh_rlhf_string_without_turn_markers(tmp_path):
    with pytest.raises(DataFormatError, match="has no"):
        _load_one(tmp_path, {"chosen": "just text", "rejected": "other text"})


_turn_text = st.text(alphabet=st.characters(blacklist_characters="\n"), max_size=12)


@given(
    preamble=_turn_text,
    turns=st.lists(st.tuples(st.sampled_from(["Human", "Assistant"]), _turn_text), max_size=6),
    response=_turn_text,
)
def test_hh_split_then_plain_render_is_the_identity(preamble, turns, response):
    text = preamble + "".join(f"\n\n{who}: {t}" for who, t in turns) + f"\n\nAssistant: {response}"
    messages, got_response = split_hh_dialogue(text)
    assert got_response == response
    assert render_plain(Conversation(messages, got_response)) == text
