"""The `ebrm` command line: thin typer commands over the library.

Each command lives in its own module and registers itself on `app`; user errors
(`EbrmError`) print one line and exit with status 2, without a traceback.
"""

from __future__ import annotations

import logging
import sys

import typer

from ebrm.errors import EbrmError

app = typer.Typer(
    name="ebrm",
    help="Energy-based refinement of frozen reward models (EBRM).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Command modules, in the order they appear in --help. Importing one registers it.
_COMMAND_MODULES = (
    "demo",
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


@app.callback()
def _root() -> None:
    """Energy-based refinement of frozen reward models (EBRM)."""


@app.command()
def version() -> None:
    """Print the versions of ebrm, torch and transformers."""
    from ebrm._version import version_info

    for name, value in version_info().items():
        typer.echo(f"{name} {value}")


_register_commands()


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit status (0 ok, 1 system error e.g. disk full, 2 user error)."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        app(args=argv, prog_name="ebrm")
    except SystemExit as exc:  # click's standalone mode ends every run this way
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except EbrmError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        return 2
    except OSError as exc:
        # Disk full, permission denied, a vanished file: the machine's fault, not a bug in
        # ebrm, so a one-line message instead of a traceback. Writes are atomic, so whatever
        # was already written is intact.
        where = f" ({exc.filename})" if exc.filename else ""
        typer.secho(
            f"error: {exc.strerror or exc}{where}; results written before this are intact, "
            "fix the cause and rerun",
            fg=typer.colors.RED,
            err=True,
        )
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
