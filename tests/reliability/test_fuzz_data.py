"""Fuzzed data files: `load_pairs` returns pairs or raises a `DataFormatError` naming the
file, never anything else (malformed JSON, missing fields, empty or huge strings, invalid
UTF-8, lone surrogates, mixed layouts in one file or one directory).

`make test` tries 100 files and 100 directories; the slow test below tries 10,000 files
(EBRM_FUZZ_FILES to change): `pytest -m slow -s tests/reliability/test_fuzz_data.py`."""

from __future__ import annotations

import gzip
import json
import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ebrm.data import load_pairs
from ebrm.data.types import PreferencePair
from ebrm.errors import ConfigError, DataFormatError
from tests.reliability import _report

# any code point, lone surrogates, NUL, RTL marks and combining characters included
chars = st.characters(blacklist_categories=())
odd = st.sampled_from(["", " ", "\x00", "\u202e", "\u200f", "e\u0301", "\ud800", "🙂", "\n\n"])
plain = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=20)
text = st.one_of(plain, plain, plain, st.text(chars, max_size=20), odd, st.just("x" * 200_000))
scalar = st.none() | st.booleans() | st.integers() | st.floats() | text
json_value = st.recursive(
    scalar, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3)
)
message = st.fixed_dictionaries(
    {"role": st.sampled_from(["user", "assistant", "system", "tool", "x"]) | text,
     "content": text | scalar}
)  # fmt: skip
sharegpt_turn = st.fixed_dictionaries(
    {"from": st.sampled_from(["human", "gpt", "system"]) | text, "value": text | scalar}
)


def dialogue(turns):
    return "".join(f"\n\n{role}: {content}" for role, content in turns)


hh_text = st.lists(
    st.tuples(st.sampled_from(["Human", "Assistant"]), text), min_size=0, max_size=4
).map(dialogue)


def maybe_drop(strategy):
    """A row strategy whose dicts sometimes lose a field or get a wrong-typed one."""

    def mutate(row, drop, wrong):
        row = dict(row)
        keys = sorted(row)
        if keys and drop is not None:
            row.pop(keys[drop % len(keys)], None)
        if keys and wrong is not None:
            row[keys[wrong[0] % len(keys)]] = wrong[1]
        return row

    return st.builds(
        mutate,
        strategy,
        st.none() | st.none() | st.none() | st.integers(0, 5),
        st.none() | st.none() | st.none() | st.tuples(st.integers(0, 5), scalar),
    )


rows = st.one_of(
    maybe_drop(st.fixed_dictionaries({"prompt": text, "chosen": text, "rejected": text})),
    maybe_drop(st.fixed_dictionaries({"chosen": hh_text, "rejected": hh_text})),
    maybe_drop(
        st.fixed_dictionaries(
            {"chosen": st.lists(message, max_size=3), "rejected": st.lists(message, max_size=3)}
        )
    ),
    maybe_drop(
        st.fixed_dictionaries(
            {
                "conversations": st.lists(sharegpt_turn, max_size=3),
                "chosen": sharegpt_turn,
                "rejected": sharegpt_turn,
            }
        )
    ),
    json_value,
)


def encode(rows_: list, container: str) -> bytes:
    if container == "json":
        return json.dumps(rows_).encode()
    if container == "json-object":
        return json.dumps({"data": rows_}).encode()
    return "".join(json.dumps(r) + "\n" for r in rows_).encode()


def corrupt(data: bytes, how: tuple[str, int]) -> bytes:
    kind, at = how
    at = at % (len(data) + 1)
    if kind == "invalid-utf8":
        return data[:at] + b"\xff\xc3(" + data[at:]
    if kind == "truncate":
        return data[:at]
    if kind == "garbage-line":
        return data + b"\n{not json\n"
    return data


files = st.tuples(
    st.lists(rows, min_size=1, max_size=6),
    st.sampled_from(["jsonl", "json", "json-object", "jsonl.gz"]),
    st.sampled_from(["none", "none", "none", "invalid-utf8", "truncate", "garbage-line"]),
    st.integers(0, 10_000),
)
SUFFIX = {"jsonl": ".jsonl", "json": ".json", "json-object": ".json", "jsonl.gz": ".jsonl.gz"}


def write(directory: Path, name: str, spec) -> Path:
    rows_, container, kind, at = spec
    data = corrupt(encode(rows_, container), (kind, at))
    if container == "jsonl.gz":
        data = gzip.compress(data)
    path = directory / (name + SUFFIX[container])
    path.write_bytes(data)
    return path


def check_load(spec_path: Path, target: str) -> None:
    try:
        pairs = load_pairs(str(spec_path))
    except DataFormatError as exc:
        assert str(exc) and spec_path.name in str(exc), str(exc)  # names the file
        _report.count(target, "DataFormatError naming the file")
        return
    except ConfigError as exc:
        assert str(exc)
        _report.count(target, "ConfigError")
        return
    assert pairs and all(isinstance(p, PreferencePair) for p in pairs)
    for pair in pairs:
        assert isinstance(pair.chosen.response, str) and isinstance(pair.rejected.response, str)
    _report.count(target, "loaded")


FUZZ = settings(
    max_examples=100,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@FUZZ
@given(spec=files)
def test_fuzzed_file_loads_or_names_the_file(spec):
    with tempfile.TemporaryDirectory() as tmp:
        check_load(write(Path(tmp), "data", spec), "data loader: one fuzzed file")


VOLUME_FILES = int(os.environ.get("EBRM_FUZZ_FILES", "10000"))


@pytest.mark.slow
@settings(FUZZ, max_examples=VOLUME_FILES)
@given(spec=files)
def test_ten_thousand_fuzzed_files_load_or_name_the_file(spec):
    with tempfile.TemporaryDirectory() as tmp:
        check_load(write(Path(tmp), "data", spec), "data loader: fuzzed files at volume")


@FUZZ
@given(specs=st.lists(files, min_size=1, max_size=3), raw=st.none() | st.binary(max_size=200))
def test_fuzzed_directory_loads_or_names_the_file(specs, raw):
    with tempfile.TemporaryDirectory() as tmp:
        for i, spec in enumerate(specs):
            write(Path(tmp), f"part-{i}", spec)
        if raw is not None:
            (Path(tmp) / "raw.jsonl").write_bytes(raw)
        try:
            pairs = load_pairs(tmp)
        except DataFormatError as exc:
            assert any(p.name in str(exc) for p in Path(tmp).iterdir()) or tmp in str(exc)
            _report.count("data loader: fuzzed directory (mixed files)", "DataFormatError")
            return
        assert all(isinstance(p, PreferencePair) for p in pairs)
        _report.count("data loader: fuzzed directory (mixed files)", "loaded")
