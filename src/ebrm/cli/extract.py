"""`ebrm extract`: embed a preference data set with a base RM into a feature store."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from ebrm.cli._options import BatchSize, DataSpec, Device, DType, MaxLength


def register(app: typer.Typer) -> None:
    @app.command()
    def extract(
        rm: Annotated[
            str, typer.Option("--rm", help="Base RM: HF sequence-classification dir or hub id.")
        ],
        data: DataSpec,
        out: Annotated[
            Path, typer.Option("--out", help="Feature store directory (resumed if partial).")
        ],
        batch_size: BatchSize = 16,
        max_length: MaxLength = 1024,
        truncation_side: Annotated[
            str,
            typer.Option(
                "--truncation-side", help="left keeps the end of long texts (the response)."
            ),
        ] = "left",
        dtype: DType = "float32",
        storage_dtype: Annotated[
            str,
            typer.Option(
                "--storage-dtype", help="Embedding storage: float32, bfloat16 or float16."
            ),
        ] = "float32",
        shard_size: Annotated[
            int, typer.Option("--shard-size", min=1, help="Rows per shard file.")
        ] = 4096,
        device: Device = None,
        limit: Annotated[
            int | None, typer.Option("--limit", min=1, help="Use only the first N pairs.")
        ] = None,
        overwrite: Annotated[
            bool, typer.Option("--overwrite", help="Discard an existing store at --out.")
        ] = False,
    ) -> None:
        """Extract (embedding, reward) of every response into a resumable feature store.

        Run under `accelerate launch -m ebrm extract ...` to split the rows across processes.
        """
        from ebrm.data import load_pairs
        from ebrm.features.extract import extract_features, process_state
        from ebrm.rm import BaseRewardModel

        started = time.perf_counter()
        state = process_state()
        if device is None and state.num_processes > 1:
            device = str(state.device)  # one device per rank
        pairs = load_pairs(data, limit=limit)
        model = BaseRewardModel.from_pretrained(
            rm,
            device=device,
            dtype=dtype,
            max_length=max_length,
            truncation_side=truncation_side,
        )
        store = extract_features(
            model,
            pairs,
            out,
            batch_size=batch_size,
            shard_size=shard_size,
            storage_dtype=storage_dtype,
            overwrite=overwrite,
            data_spec=data,
        )
        if state.is_main_process:
            typer.echo(
                f"feature store {out}: {store.num_rows} rows ({store.num_pairs} pairs), "
                f"dim {store.dim}, {store.manifest['storage_dtype']}, "
                f"{len(store.manifest['shards'])} shards, {time.perf_counter() - started:.1f} s"
            )
