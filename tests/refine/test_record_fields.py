"""Every field of a score record is explained, in one text, where records are returned
(issue 25, item 5): `RECORD_FIELDS` covers `to_records`, `ebrm score --help` prints it and
docs/concepts.md's "Reading a score" names each field."""

from __future__ import annotations

import re
from pathlib import Path

import torch
import typer

from ebrm.cli import app
from ebrm.refine.kinds import RECORD_FIELDS, RECORD_USE
from ebrm.refine.results import RefinedRewards

ROOT = Path(__file__).resolve().parents[2]
REFERENCES = ("laplace", "ensemble")


def _pattern(name: str) -> str:
    """The RECORD_FIELDS key that describes a record's column (a reference's by pattern)."""
    for ref in REFERENCES:
        if name == ref or name.startswith(ref + "_"):
            return "<name>" + name[len(ref) :]
    return name


def _result_with_references(n: int = 3) -> RefinedRewards:
    empty = RefinedRewards.empty("mean")
    columns = {k: torch.arange(n, dtype=torch.float32) for k in vars(empty)
               if isinstance(getattr(empty, k), torch.Tensor)}  # fmt: skip
    refs = {f"{r}{s}": torch.zeros(n) for r in REFERENCES for s in ("", "_std", "_lcb")}
    return RefinedRewards(**columns, method="mean", references=refs)


def test_every_field_of_a_record_is_described_and_nothing_else():
    record = _result_with_references().to_records()[0]
    assert "spread" in record  # what `conservative` uses is returned, beside std and quantiles
    described = {_pattern(name) for name in record}
    assert described == set(RECORD_FIELDS)
    assert all(text and not text.endswith(".") for text in RECORD_FIELDS.values())


def test_score_help_explains_every_field_and_which_to_use():
    command = typer.main.get_command(app).commands["score"]
    text = " ".join(command.help.split())
    assert " ".join(RECORD_USE.split()) in text
    for name in RECORD_FIELDS:
        assert f"{name}: " in text, name


def test_the_concepts_page_explains_every_field_where_records_are_read():
    page = (ROOT / "docs" / "concepts.md").read_text("utf-8")
    section = page.split("## Reading a score", 1)[1].split("\n## ", 1)[0]
    for use in ("refined", "conservative", "spread", "q05", "q95"):
        assert f"`{use}`" in section.split("| field |")[0], use  # the "which for what" list
    names = set(re.findall(r"^\| (.+?) \|", section, re.M)) - {"field", "---"}
    cells = {n.strip("`") for cell in names for n in cell.split(", ")}
    expected = {
        name.replace("<name>", ref) for name in RECORD_FIELDS for ref in REFERENCES
    }  # fmt: skip
    assert cells == expected
