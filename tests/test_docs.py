"""The documentation site: a strict offline build, and the generated references are complete.

The site is built once per module into a temporary directory (`mkdocs build --strict`: a
broken link, a missing page or an unresolved API identifier fails it). The CLI reference is
compared with what `ebrm --help` and every `ebrm COMMAND --help` print, read from the help
text itself, not from the click objects the reference is generated from.
"""

from __future__ import annotations

import html
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import ebrm
from ebrm.cli import app

ROOT = Path(__file__).resolve().parents[1]
_HEADING = re.compile(r'<h([1-6]) id="([^"]+)"[^>]*>(.*?)</h\1>', re.S)
_TAG = re.compile(r"<[^>]+>")


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "HF_HUB_OFFLINE": "1"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"), env.get("PYTHONPATH")]))
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return out


def _text(fragment: str) -> str:
    return html.unescape(_TAG.sub("", fragment))


def sections(page: str) -> dict[str, str]:
    """Heading text -> the text between that heading and the next one (any level)."""
    heads = list(_HEADING.finditer(page))
    ends = [h.start() for h in heads[1:]] + [len(page)]
    pairs = zip(heads, ends, strict=True)
    return {_text(h.group(3)).strip("¶ \n"): _text(page[h.end() : e]) for h, e in pairs}


def _help(args: list[str]) -> str:
    result = CliRunner().invoke(app, [*args, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    return result.output


def _help_block(text: str, title: str) -> list[str]:
    """The lines of one `Title:` block of click's plain help output."""
    lines, inside = [], False
    for line in text.splitlines():
        if line.rstrip() == f"{title}:":
            inside = True
        elif inside and line and not line.startswith(" "):
            break
        elif inside and line.strip():
            lines.append(line)
    return lines


def help_commands(args: list[str]) -> list[str]:
    return [line.split()[0] for line in _help_block(_help(args), "Commands") if line[2] != " "]


def help_options(args: list[str]) -> set[str]:
    """Every long flag in the first column of the Options block (`--x / --no-x` both)."""
    flags = set()
    for line in _help_block(_help(args), "Options"):
        column = re.split(r"\s{2,}", line.strip())[0]
        if column.startswith("-"):
            flags.update(re.findall(r"--[\w-]+", column))
    return flags


def command_paths(prefix: list[str] | None = None) -> list[list[str]]:
    """Every command `ebrm --help` lists, subcommands of groups included."""
    paths = []
    for name in help_commands(prefix or []):
        path = [*(prefix or []), name]
        paths.append(path)
        if help_commands_or_none(path):
            paths += command_paths(path)
    return paths


def help_commands_or_none(path: list[str]) -> list[str]:
    return help_commands(path) if "Commands:" in _help(path) else []


def test_cli_reference_lists_every_command_and_option(site):
    reference = sections((site / "cli.html").read_text(encoding="utf-8"))
    paths = command_paths()
    assert ["train"] in paths and ["base-rm", "train"] in paths  # the walk reaches groups
    for path in paths:
        title = "ebrm " + " ".join(path)
        assert title in reference, f"{title}: no section in the CLI reference"
        missing = {f for f in help_options(path) if f not in reference[title]}
        assert not missing, f"{title}: the CLI reference lacks {sorted(missing)}"


def test_help_parser_reads_options_and_commands():
    assert {"--features", "--out", "--progress", "--no-progress"} <= help_options(["train"])
    assert "base-rm" in help_commands([]) and "version" in help_commands([])


def test_api_reference_documents_the_public_api(site):
    page = (site / "api.html").read_text(encoding="utf-8")
    ids = {h.group(2) for h in _HEADING.finditer(page)}
    for name in (n for n in ebrm.__all__ if n != "__version__"):
        assert any(i.split(".")[-1] == name for i in ids), f"{name}: not in the API reference"
    assert "ebrm.references.fit_references" in ids and "ebrm.references.LaplaceReference" in ids


def test_every_page_of_the_nav_is_built_and_site_works_from_disk(site):
    for page in ("index", "getting-started", "concepts", "cli", "api", "results", "changelog"):
        assert (site / f"{page}.html").is_file(), page
    index = (site / "index.html").read_text(encoding="utf-8")
    assert 'href="getting-started.html"' in index  # plain file links: opens from file://
    assert 'data-md-component="search"' in index
    # nothing is fetched from the web: no remote script, stylesheet or font
    assert not re.search(r'<(script|link)[^>]+(src|href)="https?://', index)


def test_changelog_names_the_installed_version():
    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    first = re.search(r"^## (?!Unreleased$)(\S+)", changelog, re.M)  # the newest release
    assert first and first.group(1) == ebrm.__version__
    assert f"ebrm {ebrm.__version__}" in _cli_output("version")
    assert _cli_output("--version").strip() == f"ebrm {ebrm.__version__}"


def _cli_output(*argv: str) -> str:
    result = CliRunner().invoke(app, list(argv))
    assert result.exit_code == 0, result.output
    return result.output


def test_results_block_is_report_output():
    """The results page's marked block is `experiments/report.py` output: it starts as the
    renderer starts and names the command that rendered it; no 'issue N' anywhere."""
    page = (ROOT / "docs" / "results.md").read_text(encoding="utf-8")
    begin, end = "<!-- RESULTS:BEGIN -->", "<!-- RESULTS:END -->"
    block = page[page.index(begin) + len(begin) : page.index(end)]
    assert block.startswith("\nCells written by:\n\n```bash\npython experiments/run.py")
    assert "Rendered by `python experiments/report.py" in block


def test_no_issue_numbers_in_readme_or_docs():
    pages = [ROOT / "README.md", ROOT / "CHANGELOG.md", *sorted((ROOT / "docs").glob("*.md"))]
    found = [
        f"{p.relative_to(ROOT)}:{n}"
        for p in pages
        for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
        if re.search(r"\bissues?[- ]\d", line, re.I)
    ]
    assert not found


def test_readme_is_a_landing_page():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 250
    assert "make demo" in readme and "make test" in readme
    assert 'pip install "ebrm[server]"' in readme
    assert "docs/results.md" in readme  # the headline numbers link to their tables
