"""Containers (JSON, JSONL, gzip, Parquet, directories) and their error messages."""

from __future__ import annotations

import gzip
import json

import pytest

from ebrm.data import load_pairs
from ebrm.errors import DataFormatError
from tests.data._files import write_rows

ROWS = [
    {"prompt": f"question {i}", "chosen": f"good {i}", "rejected": f"bad {i}"} for i in range(5)
]


@pytest.mark.parametrize("name", ["d.json", "d.jsonl", "d.jsonl.gz", "d.json.gz", "d.parquet"])
def test_every_container_gives_the_same_pairs(tmp_path, name):
    pairs = load_pairs(str(write_rows(tmp_path / name, ROWS)))
    assert [(p.chosen.prompt_text, p.chosen.response, p.rejected.response) for p in pairs] == [
        (r["prompt"], r["chosen"], r["rejected"]) for r in ROWS
    ]


def test_directory_reads_supported_files_sorted_by_name(tmp_path):
    write_rows(tmp_path / "b.jsonl", ROWS[2:])
    write_rows(tmp_path / "a.json", ROWS[:2])
    (tmp_path / "notes.txt").write_text("ignored")
    pairs = load_pairs(str(tmp_path))
    assert [p.chosen.response for p in pairs] == [r["chosen"] for r in ROWS]
    assert [p.id for p in pairs] == ["a.json:0", "a.json:1", "b.jsonl:1", "b.jsonl:2", "b.jsonl:3"]


def test_json_object_with_one_list_inside(tmp_path):
    path = tmp_path / "d.json"
    path.write_text(json.dumps({"version": 1, "data": ROWS}))
    assert len(load_pairs(str(path))) == len(ROWS)


def test_json_file_holding_json_lines(tmp_path):
    path = tmp_path / "d.json"
    path.write_text("\n".join(json.dumps(r) for r in ROWS))
    assert len(load_pairs(str(path))) == len(ROWS)


def test_blank_lines_and_bom_in_jsonl(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_bytes(
        ("\ufeff" + json.dumps(ROWS[0]) + "\n\n" + json.dumps(ROWS[1]) + "\n").encode()
    )
    assert [p.id for p in load_pairs(str(path))] == ["d.jsonl:1", "d.jsonl:3"]


def test_limit_stops_early(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text(json.dumps(ROWS[0]) + "\n" + json.dumps(ROWS[1]) + "\n{broken\n")
    assert len(load_pairs(str(path), limit=2)) == 2
    with pytest.raises(DataFormatError, match=r"d\.jsonl, line 3: invalid JSON"):
        load_pairs(str(path), limit=3)


def test_malformed_jsonl_names_file_and_line(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text(json.dumps(ROWS[0]) + "\n" + '{"prompt": "x", "chosen": \n')
    with pytest.raises(DataFormatError, match=r"d\.jsonl, line 2: invalid JSON"):
        load_pairs(str(path))


def test_malformed_json_names_line(tmp_path):
    path = tmp_path / "d.json"
    path.write_text('[\n{"prompt": "x",\n "chosen": "a" "rejected": "b"}\n]')
    with pytest.raises(DataFormatError, match=r"d\.json, line 3: invalid JSON"):
        load_pairs(str(path))


@pytest.mark.parametrize("name", ["d.jsonl", "d.json", "d.jsonl.gz"])
def test_invalid_utf8_names_line(tmp_path, name):
    good = json.dumps(ROWS[0]).encode()
    bad = b'{"prompt": "caf\xe9", "chosen": "a", "rejected": "b"}'
    data = good + b"\n" + bad + b"\n"
    if name == "d.json":
        data = b"[" + good + b",\n" + bad + b"]"
    if name.endswith(".gz"):
        data = gzip.compress(data)
    (tmp_path / name).write_bytes(data)
    with pytest.raises(DataFormatError, match=r"line 2: invalid UTF-8"):
        load_pairs(str(tmp_path / name))


@pytest.mark.parametrize("content", [b"", b"  \n\n", b"[]"])
@pytest.mark.parametrize("name", ["d.jsonl", "d.json"])
def test_empty_file(tmp_path, name, content):
    (tmp_path / name).write_bytes(content)
    with pytest.raises(DataFormatError, match="empty"):
        load_pairs(str(tmp_path / name))


def test_bad_gzip(tmp_path):
    (tmp_path / "d.jsonl.gz").write_bytes(b"not gzip at all")
    with pytest.raises(DataFormatError, match="not a valid gzip"):
        load_pairs(str(tmp_path / "d.jsonl.gz"))


def test_bad_parquet(tmp_path):
    (tmp_path / "d.parquet").write_bytes(b"PAR1 nonsense")
    with pytest.raises(DataFormatError, match="cannot read Parquet"):
        load_pairs(str(tmp_path / "d.parquet"))


def test_unsupported_suffix_and_missing_path(tmp_path):
    (tmp_path / "d.csv").write_text("a,b\n")
    with pytest.raises(DataFormatError, match="unsupported file type"):
        load_pairs(str(tmp_path / "d.csv"))
    with pytest.raises(DataFormatError, match="no such file"):
        load_pairs(str(tmp_path / "missing.jsonl"))
    with pytest.raises(DataFormatError, match="hf:Anthropic/hh-rlhf"):
        load_pairs("Anthropic/hh-rlhf")
    with pytest.raises(DataFormatError, match="no data files"):
        load_pairs(str(tmp_path))


@pytest.mark.parametrize("payload", ['"a string"', "42", '{"a": [], "b": []}'])
def test_top_level_json_that_holds_no_rows(tmp_path, payload):
    (tmp_path / "d.json").write_text(payload)
    with pytest.raises(DataFormatError, match=r"d\.json: top-level JSON"):
        load_pairs(str(tmp_path / "d.json"))
