"""load_pairs / load_rmbench on the real shared files, the hub path and the load report."""

from __future__ import annotations

import gzip
import json

import pytest

from ebrm.data import load_pairs, load_pairs_with_report, load_rmbench
from ebrm.data.template import render_plain
from ebrm.errors import ConfigError, EbrmError
from tests.data._files import write_rows

HH = "hh-rlhf-harmless/pairs.jsonl.gz"


def _hh_rows(shared_data):
    with gzip.open(shared_data / HH, "rt", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


@pytest.mark.shared_data
def test_hh_rlhf_real_file(shared_data):
    rows = _hh_rows(shared_data)
    pairs, report = load_pairs_with_report(str(shared_data / HH))
    assert len(pairs) == len(rows) == report.pairs == report.rows
    # the split is exact: the plain template re-joins each side into the original string
    for pair, row in zip(pairs, rows, strict=True):
        assert render_plain(pair.chosen) == row["chosen"]
        assert render_plain(pair.rejected) == row["rejected"]
    # pairs whose dialogues differ before the last "\n\nAssistant:" are counted, not dropped
    differ = sum(
        r["chosen"][: r["chosen"].rfind("\n\nAssistant:")]
        != r["rejected"][: r["rejected"].rfind("\n\nAssistant:")]
        for r in rows
    )
    assert report.prompt_mismatch == differ == sum(p.meta["prompt_mismatch"] for p in pairs)
    empty = sum(not (p.chosen.response.strip() and p.rejected.response.strip()) for p in pairs)
    assert report.empty_responses == empty
    assert all(any(role == "user" for role, _ in p.chosen.messages) for p in pairs)


@pytest.mark.shared_data
def test_hh_rlhf_limit(shared_data):
    pairs = load_pairs(str(shared_data / HH), limit=10)
    assert [p.id for p in pairs] == [f"pairs.jsonl.gz:{i}" for i in range(1, 11)]


@pytest.mark.shared_data
@pytest.mark.parametrize(
    ("name", "domain", "subset"),
    [
        ("chat_filtered.json", "chat", "chat"),
        ("safety-response_filtered.json", "safety", "safety-response"),
    ],
)
def test_rmbench_real_files(shared_data, name, domain, subset):
    path = shared_data / "rm-bench" / name
    rows = json.loads(path.read_text(encoding="utf-8"))
    items = load_rmbench(str(path))
    assert len(items) == len(rows)
    for item, row in zip(items, rows, strict=True):
        assert (item.id, item.domain, item.subset) == (str(row["id"]), domain, subset)
        assert item.messages == (("user", row["prompt"]),)
        assert list(item.chosen) == row["chosen"] and list(item.rejected) == row["rejected"]
    pairs = load_pairs(str(path))
    assert len(pairs) == 9 * len(rows)
    first = pairs[:9]
    assert {(p.chosen.response, p.rejected.response) for p in first} == {
        (c, r) for c in rows[0]["chosen"] for r in rows[0]["rejected"]
    }


@pytest.mark.shared_data
def test_rmbench_directory(shared_data):
    items = load_rmbench(str(shared_data / "rm-bench"))
    by_file = [
        json.loads((shared_data / "rm-bench" / n).read_text())
        for n in ("chat_filtered.json", "safety-response_filtered.json")
    ]
    assert len(items) == sum(len(rows) for rows in by_file)


def test_rewardbench_rows_keep_subset(tmp_path):
    rows = [
        {"prompt": "q1", "chosen": "a", "rejected": "b", "subset": "alpacaeval-easy", "id": 1},
        {"prompt": "q2", "chosen": "c", "rejected": "d", "subset": "math-prm", "id": 2},
    ]
    pairs = load_pairs(str(write_rows(tmp_path / "rb.parquet", rows)))
    assert [(p.subset, p.id) for p in pairs] == [(r["subset"], str(r["id"])) for r in rows]


def test_report_counts_and_warning(tmp_path, caplog):
    rows = [
        {"chosen": "\n\nHuman: a\n\nAssistant: x", "rejected": "\n\nHuman: b\n\nAssistant: y"},
        {"chosen": "\n\nHuman: a\n\nAssistant: ", "rejected": "\n\nHuman: a\n\nAssistant: y"},
    ]
    path = write_rows(tmp_path / "hh.jsonl", rows)
    _, report = load_pairs_with_report(str(path))
    assert (report.rows, report.prompt_mismatch, report.empty_responses) == (2, 1, 1)
    assert dict(report.layouts) == {"hh-rlhf": 2}
    with caplog.at_level("WARNING"):
        load_pairs(str(path))
    assert "1 of 2 pairs" in caplog.text and "empty response" in caplog.text


@pytest.mark.parametrize("limit", [0, -1, 1.5, True])
def test_bad_limit(tmp_path, limit):
    path = write_rows(tmp_path / "d.json", [{"prompt": "p", "chosen": "a", "rejected": "b"}])
    with pytest.raises(ConfigError, match="limit must be"):
        load_pairs(str(path), limit=limit)


def test_hub_spec_offline_gives_a_clear_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(EbrmError, match="hub.*unreachable.*Pass a local file"):
        load_pairs("hf:no-such-org/no-such-dataset::test")


@pytest.mark.parametrize("spec", ["hf:", "hf:a:b:c:d"])
def test_bad_hub_spec(spec):
    with pytest.raises(ConfigError, match=r"hf:NAME\[:CONFIG\]\[:SPLIT\]"):
        load_pairs(spec)


def test_hub_rows_go_through_the_same_parsers(monkeypatch):
    import datasets

    rows = [{"prompt": "p", "chosen": "a", "rejected": "b", "subset": "s"}]
    calls = []

    def fake_load_dataset(name, config, split=None):
        calls.append((name, config, split))
        return datasets.DatasetDict({"test": datasets.Dataset.from_list(rows)})

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    (pair,) = load_pairs("hf:org/name")
    assert calls == [("org/name", None, None)]
    assert (pair.chosen.response, pair.subset, pair.id) == ("a", "s", "org/name:test:0")


def test_hub_dataset_with_several_splits_asks_for_one(monkeypatch):
    import datasets

    rows = [{"prompt": "p", "chosen": "a", "rejected": "b"}]

    def fake_load_dataset(name, config, split=None):
        return datasets.DatasetDict(
            {s: datasets.Dataset.from_list(rows) for s in ("train", "test")}
        )

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    with pytest.raises(ConfigError, match=r"splits \['test', 'train'\]; name one.*hf:org/n::test"):
        load_pairs("hf:org/n")
