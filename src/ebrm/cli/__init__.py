"""The `ebrm` command line: thin typer commands over the library.

Each command lives in its own module and registers itself on `app`; user errors
(`EbrmError`) print one line and exit with status 2, without a traceback.
"""

from __future__ import annotations

import re
import sys

import typer

try:  # typer >= 0.29 ships its own copy of click
    import typer._click.exceptions as _click_exceptions
except ImportError:  # pragma: no cover - older typer uses click itself
    import click.exceptions as _click_exceptions

from ebrm.errors import EbrmError, Interrupted

app = typer.Typer(
    name="ebrm",
    help="Energy-based refinement of frozen reward models (EBRM).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain help: `--flag / --no-flag`, choices as <a|b>
)

# Command modules, in the order they appear in --help. Importing one registers it.
_COMMAND_MODULES = (
    "demo",
    "split",
    "base_rm",
    "extract",
    "train",
    "eval",
    "score",
    "serve",
    "bon",
    "overopt",
)


def _register_commands() -> None:
    import importlib

    for name in _COMMAND_MODULES:
        try:
            module = importlib.import_module(f"ebrm.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"ebrm.cli.{name}":
                continue  # command not built yet
            raise
        module.register(app)


def _print_version(value: bool) -> None:
    if value:
        from ebrm._version import __version__

        typer.echo(f"ebrm {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    show_version: bool = typer.Option(
        False,
        "--version",
        callback=_print_version,
        is_eager=True,
        help="Print ebrm's version and exit (`ebrm version` adds torch and transformers).",
    ),
) -> None:
    """Energy-based refinement of frozen reward models (EBRM)."""


@app.command()
def version() -> None:
    """Print the versions of ebrm, torch and transformers."""
    from ebrm._version import version_info

    for name, value in version_info().items():
        typer.echo(f"{name} {value}")


_register_commands()


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit status.

    0 ok; 2 a user error (bad option, path, data or artifact: one line, no traceback);
    1 the machine's fault (disk full, permission denied); 128 + N when stopped by signal N
    (SIGINT 130, SIGTERM 143), after one line saying what was kept.
    """
    from ebrm.cli._runtime import configure_logging, interrupts_raise

    configure_logging()
    try:
        with interrupts_raise():
            code = app(args=argv, prog_name="ebrm", standalone_mode=False)
    except typer.Exit as exc:
        return exc.exit_code
    except typer.Abort:  # click turns a KeyboardInterrupt at a prompt into Abort
        _error("interrupted")
        return 130
    except _click_exceptions.NoArgsIsHelpError as exc:
        exc.show()  # `ebrm` or `ebrm base-rm` alone: the help text, as before
        return 2
    except typer.TyperException as exc:  # click's usage errors: bad option name or value
        message = exc.format_message().replace("Value error, ", "")
        message = re.sub(r"^Invalid value for '(-[\w-]+)'[^:]*: ", r"\1: ", message)
        ctx = getattr(exc, "ctx", None)
        hint = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
        _error(f"{message}{hint}")
        return exc.exit_code
    except EbrmError as exc:
        _error(str(exc))
        return 2
    except Interrupted as exc:
        typer.echo(str(exc), err=True)
        return 128 + exc.signum
    except OSError as exc:
        # Disk full, permission denied, a vanished file: the machine's fault, not a bug in
        # ebrm, so a one-line message instead of a traceback. Writes are atomic, so whatever
        # was already written is intact.
        where = f" ({exc.filename})" if exc.filename else ""
        _error(
            f"{exc.strerror or exc}{where}; results written before this are intact, "
            "fix the cause and rerun"
        )
        return 1
    return code if isinstance(code, int) else 0


def _error(message: str) -> None:
    """One line on stderr: the message, its newlines folded."""
    typer.secho(f"error: {' '.join(message.split())}", fg=typer.colors.RED, err=True)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
