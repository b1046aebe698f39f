"""Row layouts: detection, conversion, and the messages of layout errors."""

from __future__ import annotations

import json

import pytest

from ebrm.data import Conversation, load_pairs
from ebrm.data.formats import detect_layout
from ebrm.errors import DataFormatError
from tests.data._files import write_rows


def _load_one(tmp_path, row):
    return load_pairs(str(write_rows(tmp_path / "d.jsonl", [row])))[0]


def test_prompt_chosen_rejected_with_rewardbench_fields(tmp_path):
    row = {"prompt": "2+2?", "chosen": "4", "rejected": "5", "subset": "math-prm", "id": 31}
    pair = _load_one(tmp_path, row)
    assert pair.chosen == Conversation((("user", "2+2?"),), "4")
    assert pair.rejected == Conversation((("user", "2+2?"),), "5")
    assert (pair.subset, pair.id) == ("math-prm", "31")


def test_openai_message_lists_with_prompt_inside(tmp_path):
    prompt = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]
    row = {
        "chosen": [*prompt, {"role": "assistant", "content": "hello"}],
        "rejected": [*prompt, {"role": "assistant", "content": "go"}],
    }
    pair = _load_one(tmp_path, row)
    assert pair.chosen == Conversation((("system", "be brief"), ("user", "hi")), "hello")
    assert pair.rejected.response == "go"


@pytest.mark.parametrize("prompt", ["hi", [{"role": "user", "content": "hi"}]])
def test_openai_message_lists_with_separate_prompt(tmp_path, prompt):
    row = {
        "prompt": prompt,
        "chosen": [{"role": "assistant", "content": "hello"}],
        "rejected": [{"role": "assistant", "content": "go"}],
    }
    pair = _load_one(tmp_path, row)
    assert pair.chosen == Conversation((("user", "hi"),), "hello")
    assert pair.rejected == Conversation((("user", "hi"),), "go")


def test_trl_conversational_prompt_with_string_completions(tmp_path):
    row = {"prompt": [{"role": "user", "content": "hi"}], "chosen": "hello", "rejected": "go"}
    assert _load_one(tmp_path, row).chosen == Conversation((("user", "hi"),), "hello")


def test_messages_must_end_with_the_assistant(tmp_path):
    row = {
        "chosen": [{"role": "user", "content": "hi"}],
        "rejected": [{"role": "user", "content": "x"}],
    }
    with pytest.raises(DataFormatError, match="'chosen' must end with an assistant message"):
        _load_one(tmp_path, row)


def test_sharegpt_llamafactory_layout(tmp_path):
    row = {
        "system": "sys",
        "conversations": [
            {"from": "human", "value": "q1"},
            {"from": "gpt", "value": "a1"},
            {"from": "human", "value": "q2"},
        ],
        "chosen": {"from": "gpt", "value": "good"},
        "rejected": {"from": "gpt", "value": "bad"},
    }
    pair = _load_one(tmp_path, row)
    turns = (("system", "sys"), ("user", "q1"), ("assistant", "a1"), ("user", "q2"))
    assert pair.chosen == Conversation(turns, "good")
    assert pair.rejected == Conversation(turns, "bad")


def test_sharegpt_unknown_role(tmp_path):
    row = {
        "conversations": [{"from": "narrator", "value": "q"}],
        "chosen": {"from": "gpt", "value": "a"},
        "rejected": {"from": "gpt", "value": "b"},
    }
    with pytest.raises(DataFormatError, match=r"conversations\[0\] has role 'narrator'"):
        _load_one(tmp_path, row)


def test_unknown_layout_names_file_row_fields_and_layouts(tmp_path):
    path = write_rows(tmp_path / "d.jsonl", [{"question": "q", "answer_a": "x", "score": 3}])
    with pytest.raises(DataFormatError) as info:
        load_pairs(str(path))
    message = str(info.value)
    assert "d.jsonl, line 1" in message
    assert "question (str), answer_a (str), score (int)" in message
    for layout in ("hh-rlhf", "prompt-chosen-rejected", "messages", "sharegpt", "rm-bench"):
        assert layout in message


def test_mixed_layouts_name_the_row_where_it_changes(tmp_path):
    rows = [
        {"prompt": "p", "chosen": "a", "rejected": "b"},
        {"prompt": "p", "chosen": "a", "rejected": "b"},
        {"chosen": "\n\nHuman: p\n\nAssistant: a", "rejected": "\n\nHuman: p\n\nAssistant: b"},
    ]
    with pytest.raises(
        DataFormatError,
        match=r"line 3: the row layout changes from "
        r"prompt-chosen-rejected \(first row, .*line 1\) to hh-rlhf",
    ):
        load_pairs(str(write_rows(tmp_path / "d.jsonl", rows)))


@pytest.mark.parametrize(
    ("bad_row", "match"),
    [
        ({"prompt": "p", "chosen": "a"}, r"line 2: missing field 'rejected' \(found prompt"),
        ({"prompt": "p", "chosen": "a", "rejected": None}, r"line 2: field 'rejected' must be"),
        ({"prompt": 3, "chosen": "a", "rejected": "b"}, r"line 2: field 'prompt' must be a str"),
        ({"prompt": "p", "chosen": "a", "rejected": 1.5}, r"line 2: field 'rejected' must be"),
        ([1, 2], r"line 2: unknown row layout; found a list instead of an object"),
    ],
)
def test_bad_fields_name_file_row_and_field(tmp_path, bad_row, match):
    rows = [{"prompt": "p", "chosen": "a", "rejected": "b"}, bad_row]
    path = tmp_path / "d.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows))
    with pytest.raises(DataFormatError, match=match):
        load_pairs(str(path))


@pytest.mark.parametrize(
    ("row", "layout"),
    [
        ({"chosen": "x", "rejected": "y"}, "hh-rlhf"),
        ({"prompt": "p", "chosen": "x", "rejected": "y"}, "prompt-chosen-rejected"),
        ({"chosen": [{"role": "assistant", "content": "x"}], "rejected": []}, "messages"),
        ({"conversations": [], "chosen": {}, "rejected": {}}, "sharegpt"),
        ({"prompt": "p", "chosen": ["a"] * 3, "rejected": ["b"] * 3}, "rm-bench"),
        ({"chosen": 1, "rejected": 2}, None),
        ({"chosen": [], "rejected": []}, None),
        ("text", None),
    ],
)
def test_detect_layout(row, layout):
    assert detect_layout(row) == layout


def test_lone_surrogate_is_refused(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text('{"prompt": "p", "chosen": "bad \\ud800 text", "rejected": "b"}\n')
    with pytest.raises(DataFormatError, match=r"line 1: field 'chosen' holds a lone UTF-16"):
        load_pairs(str(path))
