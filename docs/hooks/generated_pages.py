"""MkDocs hook: the CLI and Python API reference pages, generated from the code at build time.

A page that contains `<!-- generated: cli -->` gets the whole `ebrm` command tree there (every
command, argument and option with its choices and defaults), rendered by typer's own
Markdown generator (the one behind `typer MODULE utils docs`) from the live typer app, so the
page cannot drift from `ebrm --help`. A page that contains `<!-- generated: api -->` gets one
mkdocstrings block per name of `ebrm.__all__`, at the module that defines it.

Why a hook and not a plugin such as mkdocs-typer2 or mkdocs-click: mkdocs-click needs real
`click` command objects, and typer >= 0.29 builds its commands on its own vendored copy
(`typer._click`); mkdocs-typer2's default engine shells out to a `typer` executable found on
PATH and, when that command fails, renders an empty page without a warning, which
`mkdocs build --strict` cannot catch. Calling the same generator in-process fails the build
loudly instead, and needs no further dependency.
"""

from __future__ import annotations

import importlib
import re

CLI_MARKER = "<!-- generated: cli -->"
API_MARKER = "<!-- generated: api -->"


def cli_reference_markdown() -> str:
    """Markdown for the whole `ebrm` command tree: `ebrm` as a level-2 heading, each command
    one level deeper (`ebrm base-rm train` two)."""
    import typer
    import typer.core
    from typer.cli import get_docs_for_click

    from ebrm.cli import app

    command = typer.main.get_command(app)
    _whole_first_sentences(command)
    ctx = typer.Context(command)
    ctx.ensure_object(dict)
    ctx.obj[typer.core.MARKUP_MODE_KEY] = app.rich_markup_mode
    text = get_docs_for_click(obj=command, ctx=ctx, indent=1, name="ebrm")
    return _escape_help_text(text).strip() + "\n"


def _whole_first_sentences(command) -> None:
    """Give every subcommand its help's whole first sentence as its short help: click cuts a
    command's summary in a group's command list at 45 characters ("Print the versions of
    ebrm, torch and..."), which the terminal's narrow listing needs and a web page does not."""
    for sub in getattr(command, "commands", {}).values():
        if sub.help and not sub.short_help:
            first = sub.help.strip().split("\n\n")[0]
            sub.short_help = " ".join(re.split(r"(?<=\.)\s", " ".join(first.split()))[:1])
        _whole_first_sentences(sub)


_CODE_SPAN = re.compile(r"(`[^`]*`)")
_PROSE_SPECIALS = re.compile(r"([\[\]*_<])")


def _escape(prose: str) -> str:
    """Markdown-escape `[ ] * _ <` outside code spans: help texts such as
    `hf:NAME[:CONFIG][:SPLIT]` or `mean - k*std` are prose, not links or emphasis."""
    parts = _CODE_SPAN.split(prose)
    return "".join(p if i % 2 else _PROSE_SPECIALS.sub(r"\\\1", p) for i, p in enumerate(parts))


def _escape_help_text(markdown: str) -> str:
    """Escape the help texts (option bullets and command descriptions) of typer's Markdown,
    leaving its own headings, bold labels, list markers and console blocks alone."""
    out, in_fence = [], False
    for line in markdown.splitlines():
        if line.startswith("```"):
            in_fence = not in_fence
        elif in_fence or line.startswith(("#", "**")) or not line.strip():
            pass
        elif line.startswith("* `") and "`: " in line:
            head, help_text = line.split("`: ", 1)
            line = f"{head}`: {_escape(help_text)}"
        elif not line.startswith("* "):
            line = _escape(line)
        out.append(line)
    return "\n".join(out)


def api_reference_markdown() -> str:
    """One mkdocstrings identifier per public name of `ebrm`, in `ebrm.__all__` order."""
    ebrm = importlib.import_module("ebrm")
    names = [name for name in ebrm.__all__ if name in ebrm._EXPORTS]
    blocks = [f"::: {ebrm._EXPORTS[name]}.{name}\n" for name in names]
    return "\n".join(blocks)


def on_page_markdown(markdown: str, page, config, files) -> str:  # noqa: ARG001 (mkdocs API)
    if CLI_MARKER in markdown:
        markdown = markdown.replace(CLI_MARKER, cli_reference_markdown())
    if API_MARKER in markdown:
        markdown = markdown.replace(API_MARKER, api_reference_markdown())
    return markdown
