"""Random argv for every `ebrm` command: exit status 0, 1 or 2 and a message, never an
uncaught exception. Option names come from the commands themselves; values are random
text, numbers, missing paths, garbage files, an empty directory and one valid data file."""

from __future__ import annotations

import json

import click
import pytest
import typer.main
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ebrm.cli import app, main
from tests.reliability import _report


def commands() -> dict[tuple[str, ...], list[str]]:
    """Every leaf command path -> its option names."""
    found: dict[tuple[str, ...], list[str]] = {}

    def walk(command, path: tuple[str, ...]) -> None:
        ctx = click.Context(command)
        if hasattr(command, "list_commands"):
            for name in command.list_commands(ctx):
                walk(command.get_command(ctx, name), (*path, name))
        else:
            found[path] = [opt for p in command.params for opt in p.opts + p.secondary_opts]

    walk(typer.main.get_command(app), ())
    return found


COMMANDS = commands()


def safe(value: str) -> str:
    """Keep random values inside the test's working directory (it is a tmp dir)."""
    value = value.replace("..", "_")
    return "_" + value if value.startswith(("/", "~", "\\")) else value


@pytest.fixture()
def files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # relative random paths land in tmp, never in the repo
    (tmp_path / "garbage.jsonl").write_bytes(b"\xff{not json\n")
    (tmp_path / "garbage.safetensors").write_bytes(b"\x00" * 64)
    (tmp_path / "empty").mkdir()
    row = {"prompt": "Hi?", "chosen": "Hello there.", "rejected": "No."}
    (tmp_path / "pairs.jsonl").write_text("\n".join(json.dumps(row) for _ in range(4)))
    return ["garbage.jsonl", "garbage.safetensors", "empty", "missing/dir", "pairs.jsonl"]


@pytest.mark.parametrize("path", sorted(COMMANDS), ids=lambda p: " ".join(p) or "root")
def test_random_argv_exits_0_1_2_without_traceback(path, files, capsys):
    options = COMMANDS[path]
    value = st.one_of(
        st.text(max_size=12).map(safe),
        st.integers(-3, 10**6).map(str),
        st.sampled_from(["nan", "inf", "-1", "0", "1e400", "cuda:7", "cpu", "meta", "hf:none/x"]),
        st.sampled_from(files),
    )
    # mostly option-value pairs (to get past parsing into the command), sometimes stray
    # tokens; flags followed by a value give usage errors, which is fine too
    pair = st.tuples(st.sampled_from(options or ["--help"]), value).map(list)
    stray = st.one_of(value, st.sampled_from(options or ["--help"])).map(lambda t: [t])
    argv_tail = st.lists(st.one_of(pair, pair, pair, stray), max_size=8).map(
        lambda parts: [t for part in parts for t in part]
    )

    @settings(
        max_examples=30,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    @given(tail=argv_tail)
    def check(tail):
        argv = [*path, *tail]
        if path == ("demo",):  # never run the real pipeline: its data is always garbage
            argv += ["--data", "garbage.jsonl"]
        try:
            code = main(argv)
        except BaseException as exc:  # an uncaught exception is the bug this test hunts
            raise AssertionError(f"ebrm {argv!r} raised {type(exc).__name__}: {exc}") from exc
        assert code in (0, 1, 2), (argv, code)
        out = capsys.readouterr()
        if code != 0:
            assert (out.err + out.out).strip(), argv  # a message, not silence
        _report.count(f"CLI argv: ebrm {' '.join(path) or '(root)'}", f"exit {code}")

    check()


def test_random_options_on_a_real_extraction(files, tiny_rm_dir, capsys):
    """Past argument parsing: a runnable `ebrm extract` with random extra options (device,
    dtypes, sizes, paths) either works or exits 2 with a message."""
    options = COMMANDS[("extract",)]
    value = st.one_of(
        st.text(max_size=8).map(safe),
        st.sampled_from(["0", "1", "3", "-2", "999999", "cpu", "cuda", "cuda:7", "meta", "mps"]),
        st.sampled_from(["float16", "bf16", "fp64", "int8", "left", "right", "middle"]),
        st.sampled_from(files),
    )
    pair = st.tuples(st.sampled_from(options), value).map(list)

    @settings(
        max_examples=25,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    @given(extra=st.lists(pair, max_size=3), out=st.integers(0, 10**9))
    def check(extra, out):
        argv = ["extract", "--rm", str(tiny_rm_dir), "--data", "pairs.jsonl", "--out", f"o{out}"]
        argv += ["--max-length", "32", *[t for part in extra for t in part]]
        try:
            code = main(argv)
        except BaseException as exc:
            raise AssertionError(f"ebrm {argv!r} raised {type(exc).__name__}: {exc}") from exc
        captured = capsys.readouterr()
        assert code in (0, 2), (argv, code)
        if code:
            assert "error" in (captured.err + captured.out).lower(), argv
        _report.count("CLI argv: runnable ebrm extract + random options", f"exit {code}")

    check()
