"""RM-Bench rows: items, the 9 pairs per prompt, domain inference."""

from __future__ import annotations

import pytest

from ebrm.data import load_pairs, load_rmbench
from ebrm.errors import DataFormatError
from tests.data._files import write_rows

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
