"""Every "§x" the code, tests, scripts and docs cite resolves to a heading of docs/design.md."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DESIGN = ROOT / "docs" / "design.md"
CITING = ("src", "tests", "benchmarks", "experiments", "examples", "docs")
# "§1.5", "§ 3", "§§1.6-1.7" ... : the section numbers cited
CITATION = re.compile(r"§\s*(\d+(?:\.\d+)*)")
HEADING = re.compile(r"^#{2,4} (\d+(?:\.\d+)*)\.? ", re.MULTILINE)


def _cited() -> dict[str, list[str]]:
    cited: dict[str, list[str]] = {}
    files = [ROOT / "README.md"]
    for folder in CITING:
        files += [p for p in (ROOT / folder).rglob("*") if p.suffix in (".py", ".md", ".sh")]
    for path in files:
        for number, line in _citations(path.read_text(encoding="utf-8")):
            cited.setdefault(number, []).append(f"{path.relative_to(ROOT)}:{line}")
    return cited


def _citations(text: str) -> list[tuple[str, int]]:
    return [
        (m.group(1).rstrip("."), text.count("\n", 0, m.start()) + 1)
        for m in CITATION.finditer(text)
    ]


def test_design_headings_are_numbered_sections():
    headings = HEADING.findall(DESIGN.read_text(encoding="utf-8"))
    assert {"1", "1.5", "1.8", "3", "4"} <= set(headings)
    assert len(headings) == len(set(headings)), "a section number is used twice"


def test_every_citation_resolves_to_a_heading():
    headings = set(HEADING.findall(DESIGN.read_text(encoding="utf-8")))
    cited = _cited()
    assert cited, "found no citations at all: the pattern or the folders are wrong"
    missing = {n: places for n, places in cited.items() if n not in headings}
    assert not missing, f"cited but not a heading of docs/design.md: {missing}"


def test_citation_pattern_finds_what_a_reader_would():
    text = "see DESIGN §1.5 and DESIGN § 3.\nalso §4"
    assert _citations(text) == [("1.5", 1), ("3", 1), ("4", 2)]
