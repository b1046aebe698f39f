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


def _candidate_rows(n_prompts: int) -> list[dict]:
    # 1 to 5 candidates of varied length per prompt, so chunks split prompts and batches pad
    return [
        {"prompt": f"question {p}", "candidates": [f"answer {c} " * (1 + (p + c) % 4)
                                                   for c in range(1 + p % 5)], "id": p}
        for p in range(n_prompts)
    ]  # fmt: skip


def test_chunked_selection_equals_one_call_and_bounds_each_call():
    rows = _candidate_rows(9)  # 1+2+3+4+5+1+2+3+4 = 25 candidates
    one = FakeScorer()
    whole = select_best(one, rows, reward="conservative")
    chunked = FakeScorer()
    parts = select_best(chunked, rows, reward="conservative", chunk_texts=4)
    assert parts == whole
    assert one.batch_sizes == [25] and chunked.batch_sizes == [4] * 6 + [1]
    assert chunked.seen == one.seen  # every candidate once, in file order
    with pytest.raises(ValueError, match="chunk_texts must be >= 1"):
        select_best(FakeScorer(), rows, chunk_texts=0)
    with pytest.raises(DataFormatError, match="row 1: 'candidates' must be a non-empty"):
        select_best(FakeScorer(), [rows[0], {"prompt": "p", "candidates": []}])
    assert select_best(FakeScorer(), []) == []


def test_rows_are_yielded_as_soon_as_their_candidates_are_scored():
    from ebrm.integrations.best_of_n import iter_best

    rows = _candidate_rows(6)  # 1, 2, 3, 4, 5, 1 candidates
    scorer = FakeScorer()
    stream = iter_best(scorer, iter(rows), chunk_texts=3)
    first = next(stream)  # rows 0 and 1 fill the first call (3 candidates)
    assert first["id"] == 0 and scorer.batch_sizes == [3]
    assert next(stream)["id"] == 1 and scorer.batch_sizes == [3]
    assert [r["id"] for r in stream] == [2, 3, 4, 5]


def test_streamed_file_is_byte_for_byte_the_one_call_file(tmp_path, tiny_rm_dir):
    from ebrm.integrations.best_of_n import write_best
    from ebrm.model import EnergyRewardModel
    from tests.integrations.tiny_ebrm import make_tiny_ebrm

    model_dir = make_tiny_ebrm(tmp_path / "model", tiny_rm_dir)
    model = EnergyRewardModel.from_pretrained(model_dir, device="cpu")
    rows = _candidate_rows(70)  # 210 candidates: three 64-candidate calls, then 18
    src = tmp_path / "c.jsonl"
    write_rows(src, rows)
    seen = []

    def run(name: str, chunk: int, batch_size: int) -> list[dict]:
        path = tmp_path / f"{name}.jsonl"
        n = write_best(
            path, model, read_candidates(src), reward="conservative", batch_size=batch_size,
            chunk_texts=chunk, on_row=lambda row: seen.append(row["id"]),
        )  # fmt: skip
        assert n == len(rows)
        return path.read_bytes()

    # one text per forward pass: each embedding is independent of the texts beside it, so
    # only the chunking differs, and the files are identical
    one = run("one", 10_000, 1)
    assert run("chunked", 64, 1) == one
    assert seen == [r["id"] for r in rows] * 2
    assert [json.loads(line)["id"] for line in one.decode().splitlines()] == list(range(70))
    assert not list(tmp_path.glob(".*.tmp"))  # the temporary file was moved into place
    # batches of 8 pad each text with other texts (as --batch-size does today): equal to
    # float rounding, same choices
    whole = [json.loads(line) for line in run("one8", 10_000, 8).decode().splitlines()]
    parts = [json.loads(line) for line in run("chunked8", 64, 8).decode().splitlines()]
    for a, b in zip(whole, parts, strict=True):
        assert a["best_index"] == b["best_index"]
        assert a["rewards"] == pytest.approx(b["rewards"], abs=1e-5)
