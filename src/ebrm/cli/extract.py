"""`ebrm extract`: embed a preference data set with a base RM into a feature store."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Annotated

import typer

from ebrm._io import read_json_object as _read_json
from ebrm.cli import _checks, _engine, _runtime
from ebrm.cli._lock import lock_output
from ebrm.cli._options import (
    BatchSize,
    DataSpec,
    Device,
    DType,
    Engine,
    MaxLength,
    Progress,
    Threads,
)
from ebrm.cli._placement import DeviceMap, MaxMemory, OffloadFolder, placement
from ebrm.errors import ConfigError
from ebrm.features.names import (
    DEFAULT_CHECKPOINT_SECONDS,
    DEFAULT_SHARD_SIZE,
    DEFAULT_STORAGE_DTYPE,
)
from ebrm.rm.names import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_DTYPE,
    DEFAULT_ENGINE,
    DEFAULT_MAX_LENGTH,
    DEFAULT_TRUNCATION_SIDE,
    DTypeName,
    TruncationSide,
)

# a store killed before its first manifest holds only these (see ebrm.features.extract)
_STORE_FILE = re.compile(
    r"\.?(pairs\.safetensors|pairs\.json|rows\.safetensors|(shard|partial)-\d{5}\.safetensors)"
)


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
        batch_size: BatchSize = DEFAULT_BATCH_SIZE,
        max_length: MaxLength = DEFAULT_MAX_LENGTH,
        truncation_side: Annotated[
            TruncationSide,
            typer.Option(
                "--truncation-side", help="left keeps the end of long texts (the response)."
            ),
        ] = DEFAULT_TRUNCATION_SIDE,
        dtype: DType = DEFAULT_DTYPE,
        storage_dtype: Annotated[
            DTypeName, typer.Option("--storage-dtype", help="Embedding storage dtype.")
        ] = DEFAULT_STORAGE_DTYPE,
        shard_size: Annotated[
            int, typer.Option("--shard-size", min=1, help="Rows per shard file.")
        ] = DEFAULT_SHARD_SIZE,
        checkpoint_seconds: Annotated[
            float,
            typer.Option(
                "--checkpoint-seconds",
                min=1,
                help="Save an unfinished shard's rows this often, so a kill loses at most this.",
            ),
        ] = DEFAULT_CHECKPOINT_SECONDS,
        device: Device = None,
        device_map: DeviceMap = None,
        max_memory: MaxMemory = None,
        offload_folder: OffloadFolder = None,
        limit: Annotated[
            int | None, typer.Option("--limit", min=1, help="Use only the first N pairs.")
        ] = None,
        overwrite: Annotated[
            bool, typer.Option("--overwrite", help="Discard an existing store at --out.")
        ] = False,
        progress: Progress = True,
        reuse: Annotated[
            Path | None,
            typer.Option(
                "--reuse",
                help="A feature store made by the same RM with the same settings: texts it "
                "holds are copied from it, not embedded again (default: the store `ebrm "
                "base-rm train` left in the --rm directory, RM/features, when it matches).",
            ),
        ] = None,
        no_reuse: Annotated[
            bool, typer.Option("--no-reuse", help="Embed every text, reusing no store.")
        ] = False,
        engine: Engine = DEFAULT_ENGINE,
        threads: Threads = None,
    ) -> None:
        """Extract (embedding, reward) of every response into a resumable feature store.

        Interrupted (Ctrl-C, SIGTERM, a kill), it keeps every finished shard and the rows
        of the unfinished one saved in the last --checkpoint-seconds; rerun the same command
        to resume. Run under `accelerate launch -m ebrm extract ...` to split the rows
        across processes, or with --device-map auto (one process) for an RM larger than one
        device.
        """
        _checks.need(rm, "--rm", _checks.HF_MODEL)
        _engine.check(engine)
        where = placement(
            device=device, device_map=device_map, max_memory=max_memory,
            offload_folder=offload_folder,
        )  # fmt: skip
        _checks.data_spec(data)
        lock_output(out)
        _check_out(out, overwrite=overwrite)
        if reuse is not None:
            if no_reuse:
                raise ConfigError("--reuse and --no-reuse contradict each other; pass one.")
            _checks.need(reuse, "--reuse", _checks.FEATURE_STORE)
            if reuse.resolve() == out.resolve():
                raise ConfigError(
                    f"--reuse {reuse} is the --out store itself (rerunning resumes it anyway); "
                    "pass another store to reuse, or none."
                )
        if not overwrite:
            _check_resumable(out, rm, max_length, truncation_side, shard_size)

        from ebrm.data import load_pairs
        from ebrm.features.extract import extract_features, process_state
        from ebrm.rm import BaseRewardModel

        _runtime.use_threads(threads)
        started = time.perf_counter()
        state = process_state()
        if where and state.num_processes > 1:
            raise ConfigError(
                f"--device-map splits one RM across this machine's devices, but "
                f"{state.num_processes} processes were launched; run one process with "
                "--device-map, or several without it (one device each)."
            )
        if device is None and state.num_processes > 1:
            device = str(state.device)  # one device per rank
        pairs = load_pairs(data, limit=limit)
        device = _engine.device_for(engine, device)
        model = BaseRewardModel.from_pretrained(
            rm,
            device=device,
            dtype=dtype,
            max_length=max_length,
            truncation_side=truncation_side,
            **where,
        )
        _engine.apply(model, engine)
        stored = None if no_reuse else _stored_rows(reuse, rm, out, model, storage_dtype)
        store = extract_features(
            model,
            pairs,
            out,
            batch_size=batch_size,
            shard_size=shard_size,
            storage_dtype=storage_dtype,
            overwrite=overwrite,
            data_spec=data,
            progress=progress,
            checkpoint_seconds=checkpoint_seconds,
            reuse=stored,
        )
        if state.is_main_process:
            shards = len(store.manifest["shards"])
            reused = (
                f", {_checks.plural(stored.reused, 'text')} reused from {stored.store.path}"
                if stored
                else ""
            )
            typer.echo(
                f"feature store {out}: {store.num_rows} rows "
                f"({_checks.plural(store.num_pairs, 'pair')}), "
                f"dim {store.dim}, {store.manifest['storage_dtype']}, "
                f"{_checks.plural(shards, 'shard')}{reused}, "
                f"{time.perf_counter() - started:.1f} s"
            )


def _check_out(out: Path, *, overwrite: bool) -> None:
    """--out is missing, empty, a feature store (continued or, with --overwrite, replaced)
    or what a killed extraction left; anything else is refused before any work."""
    kind = _checks.artifact_kind(out)
    if kind in (_checks.MISSING, _checks.EMPTY_DIR, _checks.FEATURE_STORE, _checks.FILE):
        _checks.output_dir(out, "--out", overwrite=True)  # file / writability checks
        return
    leftovers = all(_STORE_FILE.fullmatch(p.name) or p.name.endswith(".tmp") for p in out.iterdir())
    if kind != _checks.OTHER_DIR or not leftovers:
        raise ConfigError(
            f"--out {out} {_checks.describe(kind)}; expected a new or empty directory or a "
            "feature store to continue. Choose another --out."
        )


def _check_resumable(out: Path, rm: str, max_length: int, side: str, shard_size: int) -> None:
    """A store at --out continues only with its own settings: the flags that differ are
    named now, from its manifest, rather than by the extraction after torch, the data and the
    RM have loaded (that check, which also compares the RM's weights, still runs)."""
    if _checks.artifact_kind(out) != _checks.FEATURE_STORE:
        return
    manifest = _read_json(out / "manifest.json")
    recorded = {**manifest, **(manifest.get("base_rm") or {})}  # format < 4: top level
    # the RM caps --max-length at its position limit (`ebrm.rm.hf.clamp_to_positions`); a
    # hub id's limit is unknown before it loads, so only a local RM's is compared here
    config = Path(rm).expanduser() / "config.json"
    effective: int | None = None
    if config.is_file():
        rm_config = _read_json(config)
        limit = rm_config.get("max_position_embeddings") or rm_config.get("n_positions")
        effective = min(max_length, limit) if isinstance(limit, int) and limit > 0 else max_length
    differ = [
        f"{flag} {theirs}, not {ours}"
        for flag, ours, theirs in (
            ("--max-length", effective, recorded.get("max_length")),
            ("--truncation-side", side, recorded.get("truncation_side")),
            ("--shard-size", shard_size, manifest.get("shard_size")),
        )
        if ours is not None and theirs is not None and ours != theirs
    ]
    if differ:
        raise ConfigError(
            f"--out {out} is a feature store extracted with {'; '.join(differ)}: pass "
            "its settings to resume it, choose a new --out, or pass --overwrite to discard it."
        )


def _stored_rows(reuse: Path | None, rm: str, out: Path, model, storage_dtype: str):
    """The rows to reuse: --reuse's (checked by the extraction: a mismatch is an error), or
    those of the store `base-rm train` left in the RM directory when it matches (else none)."""
    import logging

    from ebrm.errors import IncompatibleArtifactError
    from ebrm.features.reuse import StoredRows
    from ebrm.features.store import normalize_storage_dtype

    if reuse is not None:
        return StoredRows.open(reuse)
    beside = Path(rm).expanduser() / "features"
    if _checks.artifact_kind(beside) != _checks.FEATURE_STORE or beside.resolve() == out.resolve():
        return None
    try:
        stored = StoredRows.open(beside)
        stored.check_extraction(model.provenance(), normalize_storage_dtype(storage_dtype))
    except IncompatibleArtifactError as exc:
        logging.getLogger(__name__).info("not reusing %s: %s", beside, exc)
        return None
    return stored
