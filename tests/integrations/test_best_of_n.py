"""Best-of-n selection: the best candidate per prompt, candidate files."""

from __future__ import annotations

import json

import pytest

from ebrm.data.types import Conversation
from ebrm.errors import DataFormatError
from ebrm.integrations.best_of_n import read_candidates, select_best, write_rows
from tests.fakes import FakeScorer, fake_rewards


def test_select_best_picks_the_highest_reward_per_prompt():
    rows = [
        {"prompt": "Q1", "candidates": ["a", "bb", "ccc"], "id": 7},
        {"prompt": [{"role": "user", "content": "Q2"}], "candidates": ["x"]},
    ]
    out = select_best(FakeScorer(), rows, reward="conservative")
    for row, got in zip(rows, out, strict=True):
        prompt = row["prompt"] if isinstance(row["prompt"], str) else "Q2"
        convs = [Conversation.from_prompt(prompt, c) for c in row["candidates"]]
        values = fake_rewards(convs).conservative.tolist()
        assert got["rewards"] == pytest.approx(values)
        assert got["best_index"] == values.index(max(values))
        assert got["best"] == row["candidates"][got["best_index"]]
    assert out[0]["id"] == 7


def test_read_candidates_validates_rows(tmp_path):
    good = tmp_path / "c.jsonl"
    write_rows(good, [{"prompt": "p", "candidates": ["a", "b"]}])
    assert read_candidates(good) == [{"prompt": "p", "candidates": ["a", "b"]}]
    bad_rows = {
        "{oops": "line 1: not valid JSON",
        json.dumps({"prompt": "p"}): "line 1: each row must be an object with 'prompt'",
        json.dumps({"prompt": "p", "candidates": []}): "non-empty list",
        json.dumps({"prompt": "p", "candidates": [1]}): "non-empty list",
    }
    for text, message in bad_rows.items():
        path = tmp_path / "bad.jsonl"
        path.write_text(text + "\n")
        with pytest.raises(DataFormatError, match=message):
            read_candidates(path)
    with pytest.raises(DataFormatError, match="does not exist"):
        read_candidates(tmp_path / "missing.jsonl")
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(DataFormatError, match="has no rows"):
        read_candidates(tmp_path / "empty.jsonl")
