"""Row layouts: detection, conversion, and the messages of layout errors."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ebrm.data import Conversation, load_pairs, load_rmbench
from ebrm.data.formats import detect_layout, split_hh_dialogue
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


RMB_ROW = {
    "id": 7,
    "subset": "alpacaeval",
    "prompt": "p",
    "chosen": ["c0", "c1", "c2"],
    "rejected": ["r0", "r1", "r2"],
}


def test_rmbench_rows_give_nine_pairs_each(tmp_path):
    path = write_rows(tmp_path / "chat_filtered.json", [RMB_ROW])
    pairs = load_pairs(str(path))
    expected = {(f"c{i}", f"r{j}") for i in range(3) for j in range(3)}
    assert {(p.chosen.response, p.rejected.response) for p in pairs} == expected
    assert all(p.subset == "chat" and p.chosen.messages == (("user", "p"),) for p in pairs)
    assert {(p.meta["chosen_style"], p.meta["rejected_style"]) for p in pairs} == {
        (int(c[1]), int(r[1])) for c, r in expected
    }


@pytest.mark.parametrize(
    ("filename", "fields", "domain", "subset"),
    [
        ("whatever.json", {"domain": "safety-refuse"}, "safety", "safety-refuse"),
        ("whatever.json", {"subset": "code"}, "code", "code"),
        (
            "safety-response_filtered.json",
            {"subset": "xstest-should-respond"},
            "safety",
            "safety-response",
        ),
        ("whatever.json", {"subset": "hep-python"}, "code", "code"),
        ("whatever.json", {"subset": "math-prm"}, "math", "math"),
    ],
)
def test_rmbench_domain_inference(tmp_path, filename, fields, domain, subset):
    row = {**{k: v for k, v in RMB_ROW.items() if k != "subset"}, **fields}
    (item,) = load_rmbench(str(write_rows(tmp_path / filename, [row])))
    assert (item.domain, item.subset) == (domain, subset)
    assert item.chosen == ("c0", "c1", "c2") and item.rejected == ("r0", "r1", "r2")


def test_rmbench_unknown_domain(tmp_path):
    row = {**RMB_ROW, "subset": "mystery"}
    with pytest.raises(DataFormatError, match="cannot tell the RM-Bench domain"):
        load_rmbench(str(write_rows(tmp_path / "x.json", [row])))


def test_rmbench_needs_three_responses(tmp_path):
    row = {**RMB_ROW, "chosen": ["a", "b"]}
    with pytest.raises(DataFormatError, match="'chosen' must be a list of 3 strings"):
        load_rmbench(str(write_rows(tmp_path / "chat.json", [row])))


def test_load_rmbench_refuses_pair_data(tmp_path):
    path = write_rows(tmp_path / "d.json", [{"prompt": "p", "chosen": "a", "rejected": "b"}])
    with pytest.raises(DataFormatError, match="not RM-Bench rows.*load_pairs"):
        load_rmbench(str(path))


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
