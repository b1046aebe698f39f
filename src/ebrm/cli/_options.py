"""Options shared by several commands, defined once so their names and help agree.

Options with a fixed set of values are the library's own `Literal`s (imported from its
torch-free `names`/`kinds` modules), so `--help` lists the choices and a wrong value is
refused while parsing, before any heavy import. Defaults come from the library too: no
option spells out a value of its own.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

import typer

from ebrm.rm.names import DTypeName, TruncationSide

_DEVICE = re.compile(r"(cpu|cuda|mps|xpu|meta)(:\d+)?")


def _check_device(value: str | None) -> str | None:
    if value is not None and not _DEVICE.fullmatch(value):
        raise typer.BadParameter(f"{value!r} is not a torch device; use e.g. cpu, cuda or cuda:1")
    return value


def positive(value: float | None) -> float | None:
    """An option callback: the value, if given, is > 0."""
    if value is not None and not value > 0:
        raise typer.BadParameter(f"must be > 0; got {value}")
    return value


def fraction(value: float | None) -> float | None:
    """An option callback: the value, if given, is in [0, 1)."""
    if value is not None and not 0 <= value < 1:
        raise typer.BadParameter(f"must be in [0, 1); got {value}")
    return value


Seed = Annotated[int, typer.Option("--seed", help="Random seed (training, splits, sampling).")]
Device = Annotated[
    str | None,
    typer.Option(
        "--device",
        callback=_check_device,
        help="torch device, e.g. cpu, cuda, cuda:1 (default: cuda if available).",
    ),
]
DType = Annotated[DTypeName, typer.Option("--dtype", help="Compute dtype for the base RM.")]
BatchSize = Annotated[int, typer.Option("--batch-size", min=1, help="Texts per forward pass.")]
MaxLength = Annotated[int, typer.Option("--max-length", min=8, help="Maximum tokens per text.")]
OutDir = Annotated[Path, typer.Option("--out", help="Output directory (created if missing).")]
DataSpec = Annotated[
    str,
    typer.Option(
        "--data",
        help="Local file/dir (JSON, JSONL, JSONL.GZ, Parquet) or hf:NAME[:CONFIG][:SPLIT].",
    ),
]
Overwrite = Annotated[
    bool,
    typer.Option("--overwrite", help="Replace an existing result at --out (refused without it)."),
]
Progress = Annotated[
    bool,
    typer.Option(
        "--progress/--no-progress",
        help="Progress bars on a terminal, a line every 30 s otherwise; off with --no-progress.",
    ),
]
BaseRM = Annotated[
    str | None,
    typer.Option(
        "--base-rm",
        help="Base RM directory or hub id to use instead of the one recorded in the model.",
    ),
]

# Commands that embed new texts with a refined model's base RM (eval, bon, serve): the
# settings must be the ones the model's features were made with, which it records.
EmbedMaxLength = Annotated[
    int | None,
    typer.Option(
        "--max-length",
        min=8,
        help="Tokens per text when embedding; must equal what the model's features were made "
        "with (default: the value the model records).",
    ),
]
EmbedTruncationSide = Annotated[
    TruncationSide | None,
    typer.Option(
        "--truncation-side",
        help="Which end of long texts is cut when embedding; must equal what the model's "
        "features were made with (default: the value the model records).",
    ),
]
ReuseFeatures = Annotated[
    Path | None,
    typer.Option(
        "--features",
        help="A feature store made by the model's base RM with the same settings (e.g. the "
        "OUT/features of `ebrm base-rm train`, or an `ebrm extract` store): texts it holds "
        "are read from it, not embedded again.",
    ),
]
