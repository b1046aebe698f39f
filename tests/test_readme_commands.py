"""Every command the README and the documentation pages show exists, with every flag it is
shown with.

The shell blocks of README.md and docs/*.md are parsed (continuation lines joined, comments
dropped, `&&` / `;` / `|` split): an `ebrm ...` command (also `python -m ebrm`,
`accelerate launch -m ebrm`, `torchrun -m ebrm`) must name an existing subcommand whose
`--help` lists each `--flag` used (read from the click command objects, no subprocess); a
`python benchmarks/...` or `python experiments/...` script must exist and define each flag
it is given; a `python -m` module must be importable (when its top-level package is
installed at all: the docs also show optional third-party launchers).
"""

from __future__ import annotations

import importlib.util
import re
import shlex
from pathlib import Path

import typer

from ebrm.cli import app

ROOT = Path(__file__).resolve().parents[1]
_BLOCK = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)
_SHELL = {"bash", "sh", "shell", "console"}
_ASSIGNMENT = re.compile(r"[A-Za-z_]\w*=")
_OPERATORS = {"&&", "||", ";", "|", "&"}


def shell_commands(markdown: str) -> list[tuple[int, list[str]]]:
    """(line number, argv) of every command in the markdown's shell code blocks."""
    commands = []
    for block in _BLOCK.finditer(markdown):
        if block.group(1) not in _SHELL:
            continue
        first = markdown[: block.start()].count("\n") + 2
        lines = block.group(2).splitlines()
        index = 0
        while index < len(lines):
            number, text = first + index, lines[index]
            while text.rstrip().endswith("\\") and index + 1 < len(lines):
                index += 1
                text = text.rstrip()[:-1] + " " + lines[index]
            index += 1
            lexer = shlex.shlex(text, posix=True, punctuation_chars=True)
            lexer.whitespace_split = True
            lexer.commenters = "#"
            argv: list[str] = []
            for token in [*lexer, ";"]:
                if token in _OPERATORS:
                    while argv and _ASSIGNMENT.match(argv[0]):  # `T=... ebrm ...`
                        argv.pop(0)
                    if argv:
                        commands.append((number, argv))
                    argv = []
                else:
                    argv.append(token)
    return commands


def _ebrm_problems(args: list[str]) -> list[str]:
    node = typer.main.get_command(app)
    path = ["ebrm"]
    rest = list(args)
    while rest and hasattr(node, "commands") and not rest[0].startswith("-"):
        name = rest.pop(0)
        if name not in node.commands:
            return [f"`{' '.join(path)} {name}`: no such command"]
        node = node.commands[name]
        path.append(name)
    flags = {"--help"}
    for param in node.params:
        flags.update(o for o in [*param.opts, *param.secondary_opts] if o.startswith("--"))
    return [
        f"`{' '.join(path)}` has no option {token.split('=')[0]}"
        for token in rest
        if token.startswith("--") and token.split("=")[0] not in flags
    ]


def _script_problems(script: str, args: list[str]) -> list[str]:
    file = ROOT / script
    if not file.is_file():
        return [f"{script} does not exist"]
    text = file.read_text(encoding="utf-8")
    return [
        f"{script} defines no option {flag}"
        for flag in (t.split("=")[0] for t in args if t.startswith("--"))
        if f'"{flag}"' not in text and f"'{flag}'" not in text
    ]


def _module_problems(module: str) -> list[str]:
    if importlib.util.find_spec(module.split(".")[0]) is None:
        return []  # a launcher the README mentions but this environment does not install
    try:
        found = importlib.util.find_spec(module)
    except ModuleNotFoundError:
        found = None
    return [] if found is not None else [f"python -m {module}: no such module"]


def command_problems(argv: list[str]) -> list[str]:
    """What is wrong with one documented command (empty: nothing we can check is wrong)."""
    if "--" in argv[1:]:  # `runner ARGS -- COMMAND`: each part checked on its own
        cut = argv.index("--", 1)
        head, tail = argv[:cut], argv[cut + 1 :]
        return command_problems(head) + (command_problems(tail) if tail else [])
    program = argv[0]
    if program in ("ebrm", ".venv/bin/ebrm"):
        return _ebrm_problems(argv[1:])
    if program in ("python", "python3", "accelerate", "torchrun"):
        if "-m" in argv:
            module = argv[argv.index("-m") + 1]
            if module == "ebrm":
                return _ebrm_problems(argv[argv.index("-m") + 2 :])
            return _module_problems(module)
        if program.startswith("python") and len(argv) > 1 and argv[1].endswith(".py"):
            return _script_problems(argv[1], argv[2:])
    return []


def readme_problems(markdown: str, name: str = "README") -> list[str]:
    return [
        f"{name} line {number}: {problem}"
        for number, argv in shell_commands(markdown)
        for problem in command_problems(argv)
    ]


DOCUMENTED = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def test_every_documented_command_and_flag_exists():
    found, problems = 0, []
    for path in DOCUMENTED:
        markdown = path.read_text(encoding="utf-8")
        found += sum(argv[0] == "ebrm" for _, argv in shell_commands(markdown))
        problems += readme_problems(markdown, str(path.relative_to(ROOT)))
    assert found >= 30  # the parser finds them (the Quick start alone shows 10)
    assert problems == []


def test_the_readme_and_the_getting_started_page_show_the_quick_start():
    for name in ("README.md", "docs/getting-started.md"):
        commands = [argv[:2] for _, argv in shell_commands((ROOT / name).read_text("utf-8"))]
        for step in (["ebrm", "split"], ["ebrm", "train"], ["ebrm", "eval"], ["ebrm", "serve"]):
            assert step in commands, f"{name}: the Quick start lacks `{' '.join(step)}`"


def test_a_documented_flag_or_command_that_does_not_exist_is_caught():
    snippet = """
```bash
D=data.jsonl   # a variable
ebrm extract --rm runs/rm --data $D \\
    --out runs/f --max-lenght 256          # a typo'd flag on a continuation line
ebrm base-rm train --data $D --out runs/rm --freeze-encoder --features-out=runs/f
ebrm base-rm fit --data $D
cd runs && ebrm evaluate --model m
accelerate launch --num_processes 2 -m ebrm extract --rm r --bogus
python experiments/run.py --data-dir d --no-such-flag
python benchmarks/bench_missing.py
python -m ebrm.no_such_module
```

```json
{"ebrm": "not a command --at-all"}
```
"""
    problems = readme_problems(snippet)
    assert problems == [
        "README line 4: `ebrm extract` has no option --max-lenght",
        "README line 7: `ebrm base-rm fit`: no such command",
        "README line 8: `ebrm evaluate`: no such command",
        "README line 9: `ebrm extract` has no option --bogus",
        "README line 10: experiments/run.py defines no option --no-such-flag",
        "README line 11: benchmarks/bench_missing.py does not exist",
        "README line 12: python -m ebrm.no_such_module: no such module",
    ]
