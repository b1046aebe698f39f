"""Resumable, multi-process extraction of (embedding, reward) rows into a feature store.

The work is fixed before anything runs: the *plan* is the ordered list of unique formatted
texts plus the pair table, and its hash goes into the manifest; it keeps keys, lengths and
row indices only, and a rank formats the texts of its own shards as it extracts them. Shard
`k` always holds the same rows, so a rerun keeps every verified shard and re-extracts only
the missing ones, with any number of processes (`accelerate launch -m ebrm extract ...`;
shards are dealt round-robin to the ranks, each rank writes its own shard files and a small
progress file, and rank 0 merges them into one manifest at the end). A shared file system is
assumed across nodes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from ebrm._io import atomic_write_json
from ebrm._progress import tqdm
from ebrm._text import plural
from ebrm.data.types import PreferencePair
from ebrm.errors import ConfigError, CorruptArtifactError, Interrupted
from ebrm.features import layout, partial
from ebrm.features.names import (
    DEFAULT_CHECKPOINT_SECONDS,
    DEFAULT_SHARD_SIZE,
    DEFAULT_STORAGE_DTYPE,
)
from ebrm.features.plan import EmbeddingModel, ExtractionPlan, build_plan
from ebrm.features.prepare import (
    check_compatible,
    prepare_store,
    progress_file,
    remove_store,
    run_settings,
)
from ebrm.features.reuse import StoredRows
from ebrm.features.store import FeatureStore
from ebrm.rm.names import DEFAULT_BATCH_SIZE

logger = logging.getLogger(__name__)

# Texts handed to the RM per call: several batches, so that the RM's own length sorting
# still has room to work while the progress bar moves often enough on a slow 8B model.
_BATCHES_PER_CALL = 8

__all__ = ["check_compatible", "extract_features", "process_state"]


def process_state():
    """accelerate's process state (a single process when not launched by accelerate/torchrun).

    On a machine without an accelerator, accelerate only forms a (gloo) process group when
    asked for CPU explicitly, so several launched processes there mean CPU processes.
    """
    import os

    from accelerate import PartialState
    from accelerate.utils import parse_flag_from_env

    launched = int(os.environ.get("WORLD_SIZE", "1")) > 1
    accelerator = getattr(torch, "accelerator", None)
    has_accelerator = (
        accelerator.is_available() if accelerator is not None else torch.cuda.is_available()
    )
    cpu = parse_flag_from_env("ACCELERATE_USE_CPU") or (launched and not has_accelerator)
    return PartialState(cpu=cpu)


def extract_features(
    rm: EmbeddingModel,
    pairs: Sequence[PreferencePair],
    out: str | Path,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    shard_size: int = DEFAULT_SHARD_SIZE,
    storage_dtype: str = DEFAULT_STORAGE_DTYPE,
    progress: bool = True,
    overwrite: bool = False,
    data_spec: str | None = None,
    checkpoint_seconds: float | None = DEFAULT_CHECKPOINT_SECONDS,
    reuse: StoredRows | None = None,
) -> FeatureStore:
    """Embed every unique response of `pairs` with `rm` into the feature store `out`.

    Resumable: rerunning the same call on a partial store keeps its verified shards and
    extracts only the rest. Under `accelerate launch` the shards are split across processes.

    Args:
        rm: the base RM (`ebrm.rm.BaseRewardModel` or anything with the same methods).
        pairs: the preference data.
        out: the store directory (created if missing).
        batch_size: texts per forward pass.
        shard_size: rows per shard file.
        storage_dtype: float32, bfloat16 or float16 for the embeddings (rewards: float32).
        progress: show a tqdm bar (on the main process only).
        overwrite: discard an existing store at `out` instead of continuing it.
        data_spec: the data spec the pairs came from, recorded in the manifest.
        checkpoint_seconds: save the rows of an unfinished shard this often (and on
            SIGINT/SIGTERM), so an interruption loses at most about this much work; None
            saves only finished shards.
        reuse: rows of another store made by the same RM with the same settings: texts it
            holds are copied from it instead of embedded (`ebrm.features.reuse`).

    Returns:
        The finished `FeatureStore`.

    Raises:
        IncompatibleArtifactError: `out` holds a store made with another RM, other settings
            or other data (unless `overwrite`), or files that are not a feature store; or
            `reuse` was made by another RM, other settings or another storage dtype.
        ConfigError: invalid options or no pairs.
        Interrupted: stopped by a signal; the message says how much was kept.
    """
    _check_sizes(batch_size=batch_size, shard_size=shard_size)
    storage_dtype = layout.normalize_storage_dtype(storage_dtype)
    out = Path(out)
    state = process_state()
    plan = build_plan(rm, pairs)
    settings = run_settings(rm, plan, shard_size, storage_dtype, batch_size=batch_size)
    if reuse is not None:
        reuse.check_extraction(settings["base_rm"], settings["storage_dtype"])
    # Every rank checks (read-only), so a refusal reaches all ranks instead of hanging them.
    existing = None if overwrite else check_compatible(out, settings)
    if state.is_main_process:
        if overwrite:
            remove_store(out)
        prepare_store(out, plan, settings, existing, data_spec)
    state.wait_for_everyone()

    manifest = layout.read_manifest(out)
    ranges = layout.shard_ranges(plan.num_rows, shard_size)
    done = {record["index"] for record in manifest["shards"]}
    todo = [k for k in range(len(ranges)) if k not in done]
    mine = todo[state.process_index :: state.num_processes]
    if state.is_main_process:
        _say_resumed(out, plan, manifest, ranges, done, batch_size)
    _extract_shards(
        rm, plan, out, manifest, mine, ranges,
        batch_size=batch_size,
        storage_dtype=storage_dtype,
        progress=progress and state.is_main_process,
        rank=state.process_index,
        world_size=state.num_processes,
        checkpoint_seconds=checkpoint_seconds,
        reuse=reuse,
    )  # fmt: skip
    state.wait_for_everyone()
    if state.num_processes > 1 and state.is_main_process:
        prepare_store(out, plan, settings, layout.read_manifest(out), data_spec)
    state.wait_for_everyone()
    store = FeatureStore.open(out)
    if not store.complete:  # pragma: no cover - only when a rank failed silently
        raise CorruptArtifactError(f"{out} is incomplete after extraction; re-run to finish it.")
    return store


def _extract_shards(
    rm: EmbeddingModel,
    plan: ExtractionPlan,
    out: Path,
    manifest: dict[str, Any],
    mine: list[int],
    ranges: list[tuple[int, int]],
    *,
    batch_size: int,
    storage_dtype: str,
    progress: bool,
    rank: int,
    world_size: int,
    checkpoint_seconds: float | None = 60.0,
    reuse: StoredRows | None = None,
) -> None:
    """Embed and write this rank's shards, recording each one once it is on disk.

    Raises:
        Interrupted: on SIGINT/SIGTERM (KeyboardInterrupt too), after saving the rows of
            the unfinished shard; the message counts the shards kept.
    """
    progress_path = progress_file(out, rank)
    written: list[dict] = []
    dim = manifest["embedding_dim"]
    chunk = batch_size * _BATCHES_PER_CALL
    where = dict(plan_hash=plan.plan_hash, chunk=chunk)
    # the bar counts the texts left: rows a partial file keeps are not embedded again
    kept = sum(
        partial.partial_rows(out, k, start=ranges[k][0], end=ranges[k][1], dim=dim, **where)
        for k in mine
    )
    total = sum(ranges[k][1] - ranges[k][0] for k in mine) - kept
    embeddings: list[torch.Tensor] = []
    rewards: list[torch.Tensor] = []
    index, start, saved = -1, 0, 0  # the shard in progress, its first row, rows on disk
    try:
        with tqdm(total=total, disable=not (progress and mine), unit="text", desc="extract") as bar:
            for index in mine:
                start, end = ranges[index]
                resumed = partial.load_partial(out, index, start=start, end=end, dim=dim, **where)
                embeddings, rewards = ([resumed[0]], [resumed[1]]) if resumed else ([], [])
                saved = sum(len(r) for r in rewards)
                last_save = time.monotonic()
                for lo in range(start + saved, end, chunk):
                    texts = plan.texts[lo : min(lo + chunk, end)]
                    emb, rew = _embed_chunk(rm, texts, batch_size=batch_size, dim=dim, reuse=reuse)
                    embeddings.append(emb)
                    rewards.append(rew)
                    bar.update(len(texts))
                    due = checkpoint_seconds is not None and (
                        time.monotonic() - last_save >= checkpoint_seconds
                    )
                    if due and lo + chunk < end:
                        saved = _save_partial(out, index, start, embeddings, rewards, where)
                        last_save = time.monotonic()
                record = layout.write_shard(
                    out, index, start, torch.cat(embeddings), torch.cat(rewards),
                    storage_dtype=storage_dtype,
                )  # fmt: skip
                # Only now, with the shard safely on disk, is it recorded as done.
                if world_size == 1:
                    _record_shard(out, manifest, record, num_shards=len(ranges))
                else:
                    written.append(record)
                    atomic_write_json(
                        progress_path,
                        {"plan_hash": plan.plan_hash, "rank": rank, "shards": written},
                    )
                partial.remove_partial(out, index)
                embeddings, rewards, saved = [], [], 0
    except (Interrupted, KeyboardInterrupt) as exc:
        rows = sum(len(r) for r in rewards)
        if rows > saved:
            rows = _save_partial(out, index, start, embeddings, rewards, where)
        shards = len(manifest["shards"]) + len(written)
        raise Interrupted(
            f"interrupted: {partial.kept_text(shards, len(ranges), rows, shard=index)} kept; "
            "rerun the same command to resume",
            signum=getattr(exc, "signum", 2),
        ) from None


def _say_resumed(out: Path, plan: ExtractionPlan, manifest, ranges, done, batch_size) -> None:
    """One line before the bar when an earlier run's shards or partial rows are kept:
    'resuming OUT: 1 of 3 shards and 128 rows kept, 2,410 texts left'."""
    where = dict(
        plan_hash=plan.plan_hash, chunk=batch_size * _BATCHES_PER_CALL,
        dim=manifest["embedding_dim"],
    )  # fmt: skip
    todo = [k for k in range(len(ranges)) if k not in done]
    if not todo:  # a rerun of a finished extraction: nothing to resume, no empty bar
        shards = plural(len(done), "shard")
        logger.info("%s is already complete (%s): nothing to embed", out, shards)
        return
    rows = sum(
        partial.partial_rows(out, k, start=ranges[k][0], end=ranges[k][1], **where) for k in todo
    )
    if done or rows:
        left = sum(ranges[k][1] - ranges[k][0] for k in todo) - rows
        kept = partial.kept_text(len(done), len(ranges), rows)
        logger.info("resuming %s: %s kept, %s texts left", out, kept, f"{left:,}")


def _check_sizes(**sizes: int) -> None:
    for name, value in sizes.items():
        if value < 1:
            raise ConfigError(f"{name} must be an int >= 1; got {value}.")


def _embed_chunk(
    rm: EmbeddingModel,
    texts: list[str],
    *,
    batch_size: int,
    dim: int,
    reuse: StoredRows | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """`rm.embed_texts` (or the rows `reuse` holds), output shapes checked against the
    store's."""
    if reuse is not None:
        emb, rew = reuse.embed(rm, texts, batch_size=batch_size, progress=False)
    else:
        emb, rew = rm.embed_texts(texts, batch_size=batch_size, progress=False)
    if tuple(emb.shape) != (len(texts), dim) or tuple(rew.shape) != (len(texts),):
        raise ValueError(
            f"embed_texts returned embeddings {tuple(emb.shape)} and rewards "
            f"{tuple(rew.shape)} for {len(texts)} texts; expected "
            f"({len(texts)}, {dim}) and ({len(texts)},)"
        )
    return emb, rew


def _record_shard(out: Path, manifest: dict[str, Any], record: dict, *, num_shards: int) -> None:
    """Add a written shard to the manifest (single process) and save it."""
    manifest["shards"] = sorted([*manifest["shards"], record], key=lambda r: r["index"])
    manifest["complete"] = len(manifest["shards"]) == num_shards
    layout.write_manifest(out, manifest)


def _save_partial(out, index, start, embeddings, rewards, where) -> int:
    """Save the unfinished shard's rows so far; returns how many."""
    rew = torch.cat(rewards)
    partial.save_partial(out, index, torch.cat(embeddings), rew, start=start, **where)
    return int(rew.shape[0])
