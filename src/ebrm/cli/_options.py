"""Options shared by several commands, defined once so their names and help agree."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

Seed = Annotated[int, typer.Option("--seed", help="Random seed (training, splits, sampling).")]
Device = Annotated[
    str | None,
    typer.Option(
        "--device", help="torch device, e.g. cpu, cuda, cuda:1 (default: cuda if available)."
    ),
]
DType = Annotated[
    str,
    typer.Option("--dtype", help="Compute dtype for the base RM: float32, bfloat16 or float16."),
]
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
