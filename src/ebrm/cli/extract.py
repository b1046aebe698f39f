"""`ebrm extract`: embed a preference data set with a base RM into a feature store."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from ebrm._config import default
from ebrm.cli._options import BatchSize, DataSpec, Device, DType, MaxLength
from ebrm.features.extract import extract_features
from ebrm.rm.adapter import BaseRewardModel

# the options' defaults are those of the functions they are passed to, written once there
_LOAD, _EXTRACT = BaseRewardModel.from_pretrained, extract_features


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
        batch_size: BatchSize = default(_EXTRACT, "batch_size"),
        max_length: MaxLength = default(_LOAD, "max_length"),
        truncation_side: Annotated[
            str,
            typer.Option(
                "--truncation-side", help="left keeps the end of long texts (the response)."
            ),
        ] = default(_LOAD, "truncation_side"),
        dtype: DType = default(_LOAD, "dtype"),
        storage_dtype: Annotated[
            str,
            typer.Option(
                "--storage-dtype", help="Embedding storage: float32, bfloat16 or float16."
            ),
        ] = default(_EXTRACT, "storage_dtype"),
        shard_size: Annotated[
            int, typer.Option("--shard-size", min=1, help="Rows per shard file.")
        ] = default(_EXTRACT, "shard_size"),
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
        from ebrm.features.extract import process_state

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
