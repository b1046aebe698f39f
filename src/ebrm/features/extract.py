"""Resumable, multi-process extraction of (embedding, reward) rows into a feature store.

The work is fixed before anything runs: the *plan* is the ordered list of unique formatted
texts plus the pair table, and its hash goes into the manifest. Shard `k` always holds the
same rows, so a rerun keeps every verified shard and re-extracts only the missing ones, with
any number of processes (`accelerate launch -m ebrm extract ...`; shards are dealt round-robin
to the ranks, each rank writes its own shard files and a small progress file, and rank 0
merges them into one manifest at the end). A shared file system is assumed across nodes.
"""

from __future__ import annotations

import logging
import re
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from ebrm._io import atomic_write_json, read_json_object
from ebrm._progress import tqdm
from ebrm._version import __version__, version_info
from ebrm.data.types import PreferencePair
from ebrm.errors import ConfigError, CorruptArtifactError, IncompatibleArtifactError, Interrupted
from ebrm.features import partial
from ebrm.features import store as fs
from ebrm.features.plan import EmbeddingModel, ExtractionPlan, build_plan
from ebrm.features.reuse import StoredRows

logger = logging.getLogger(__name__)

# Texts handed to the RM per call: several batches, so that the RM's own length sorting
# still has room to work while the progress bar moves often enough on a slow 8B model.
_BATCHES_PER_CALL = 8
_PROGRESS = re.compile(r"progress-rank-\d{5}\.json")
_SHARD = re.compile(r"shard-\d{5}\.safetensors")
_OWN_FILES = {fs.MANIFEST, fs.PAIRS_TENSORS, fs.PAIRS_META, fs.ROWS}


def _settings(rm: EmbeddingModel, plan: ExtractionPlan, shard_size: int, storage_dtype: str):
    provenance = dict(rm.provenance())
    return {
        "base_rm": provenance,
        "embedding_dim": int(rm.hidden_size),
        "storage_dtype": storage_dtype,
        "reward_dtype": "float32",
        "max_length": provenance.get("max_length", getattr(rm, "max_length", None)),
        "truncation_side": provenance.get("truncation_side", getattr(rm, "truncation_side", None)),
        "num_rows": plan.num_rows,
        "num_pairs": len(plan.ids),
        "shard_size": shard_size,
        "num_shards": len(fs.shard_ranges(plan.num_rows, shard_size)),
        "plan_hash": plan.plan_hash,
    }


# (label, how to read it from a manifest): what must agree to continue an existing store.
_COMPATIBILITY = (
    ("base RM weights (weights_hash)", lambda m: m.get("base_rm", {}).get("weights_hash")),
    ("base RM compute dtype", lambda m: str(m.get("base_rm", {}).get("dtype"))),
    ("embedding dim", lambda m: m.get("embedding_dim")),
    ("max_length", lambda m: m.get("max_length")),
    ("truncation side", lambda m: m.get("truncation_side")),
    ("storage dtype", lambda m: m.get("storage_dtype")),
    ("shard size", lambda m: m.get("shard_size")),
    ("data (plan hash of the formatted texts and pairs)", lambda m: m.get("plan_hash")),
)


def check_compatible(out: Path, settings: dict[str, Any]) -> dict[str, Any] | None:
    """The existing manifest at `out` (None if there is none), if this run may continue it.

    Raises:
        IncompatibleArtifactError: naming every setting that differs, or when `out` holds
            files that are not a feature store.
    """
    if not out.exists():
        return None
    if not out.is_dir():
        raise ConfigError(f"--out {out} exists and is not a directory; choose a directory.")
    if not (out / fs.MANIFEST).exists():
        foreign = [p.name for p in out.iterdir() if not _is_own_file(p.name)]
        if foreign:
            raise IncompatibleArtifactError(
                f"--out {out} is not empty and is not a feature store (it holds e.g. "
                f"{foreign[0]!r}); choose a new or empty directory."
            )
        return None
    manifest = fs.read_manifest(out)
    differ = [
        f"{label}: store has {get(manifest)!r}, this run has {get(settings)!r}"
        for label, get in _COMPATIBILITY
        if get(manifest) != get(settings)
    ]
    if differ:
        raise IncompatibleArtifactError(
            f"The feature store {out} was made with different settings, so its rows cannot be "
            f"mixed with this run's: {'; '.join(differ)}. Use a new --out directory, or pass "
            "--overwrite to discard the store and start over."
        )
    return manifest


def _is_own_file(name: str) -> bool:
    if name in _OWN_FILES or _SHARD.fullmatch(name) or _PROGRESS.fullmatch(name):
        return True
    if partial.PARTIAL.fullmatch(name):
        return True
    # leftovers of ebrm._io.atomic_write killed mid-write: ".<name>.<random>.tmp"
    if name.startswith(".") and name.endswith(".tmp") and name.count(".") >= 3:
        return _is_own_file(name[1:].rsplit(".", 2)[0])
    return False


def _verified(out: Path, records: list[dict], ranges: list[tuple[int, int]]) -> list[dict]:
    """The shard records whose file exists, matches its checksum and its planned rows."""
    kept: dict[int, dict] = {}
    for record in records:
        index = record.get("index")
        file = out / str(record.get("file"))
        if not isinstance(index, int) or not 0 <= index < len(ranges) or index in kept:
            continue
        if (record.get("start"), record.get("end")) != ranges[index] or not file.is_file():
            logger.warning("%s is missing or misplaced; it will be re-extracted", file)
            continue
        if fs.sha256_file(file) != record.get("sha256"):
            logger.warning("%s fails its checksum; it will be re-extracted", file)
            continue
        kept[index] = record
    return [kept[i] for i in sorted(kept)]


def _prepare(
    out: Path,
    plan: ExtractionPlan,
    settings: dict[str, Any],
    existing: dict[str, Any] | None,
    data_spec: str | None,
) -> dict[str, Any]:
    """Rank 0: clean up, merge and verify earlier progress, write pair table and manifest."""
    out.mkdir(parents=True, exist_ok=True)
    for path in out.iterdir():
        if path.name.startswith(".") and _is_own_file(path.name):
            path.unlink(missing_ok=True)  # half-written temporary file of a killed run
    ranges = fs.shard_ranges(plan.num_rows, settings["shard_size"])
    records = list(existing["shards"]) if existing else []
    progress_files = sorted(p for p in out.iterdir() if _PROGRESS.fullmatch(p.name))
    for path in progress_files:
        progress = read_json_object(path)
        if existing and progress.get("plan_hash") == settings["plan_hash"]:
            records.extend(progress.get("shards", []))
    shards = _verified(out, records, ranges)
    for record in shards:  # rows of a shard that has since been completed
        partial.remove_partial(out, record["index"])
    pairs_sha = fs.write_pair_table(
        out, plan.chosen, plan.rejected, plan.ids, plan.subsets, plan.prompt_hashes
    )
    pairs_sha[fs.ROWS] = fs.write_row_keys(out, plan.keys)
    manifest = {
        "format": fs.FORMAT_NAME,
        "format_version": fs.FORMAT_VERSION,
        "ebrm_version": __version__,
        "versions": version_info(),
        **settings,
        "row_order": "unique formatted texts, longest first",
        "data": {
            "spec": data_spec,
            "num_pairs": len(plan.ids),
            "num_texts": 2 * len(plan.ids),
            "num_unique_texts": plan.num_rows,
        },
        "pairs_sha256": pairs_sha,
        "shards": shards,
        "complete": len(shards) == len(ranges),
    }
    fs.write_manifest(out, manifest)
    for path in progress_files:  # merged into the manifest above
        path.unlink(missing_ok=True)
    return manifest


def _remove_store(out: Path) -> None:
    """Delete the files of a feature store at `out` (only ours: never a whole directory)."""
    if not out.exists():
        return
    if not out.is_dir():
        raise ConfigError(f"--out {out} exists and is not a directory; choose a directory.")
    if not (out / fs.MANIFEST).exists() and any(not _is_own_file(p.name) for p in out.iterdir()):
        raise IncompatibleArtifactError(
            f"--overwrite refuses to empty {out}: it is not a feature store. "
            "Choose a new or empty directory."
        )
    for path in out.iterdir():
        if _is_own_file(path.name):
            shutil.rmtree(path) if path.is_dir() else path.unlink()


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
    batch_size: int = 16,
    shard_size: int = 4096,
    storage_dtype: str = "float32",
    progress: bool = True,
    overwrite: bool = False,
    data_spec: str | None = None,
    checkpoint_seconds: float | None = 60.0,
    reuse: StoredRows | None = None,
) -> fs.FeatureStore:
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
    storage_dtype = fs.normalize_storage_dtype(storage_dtype)
    out = Path(out)
    state = process_state()
    plan = build_plan(rm, pairs)
    settings = _settings(rm, plan, shard_size, storage_dtype)
    if reuse is not None:
        reuse.check_extraction(settings["base_rm"], settings["storage_dtype"])
    # Every rank checks (read-only), so a refusal reaches all ranks instead of hanging them.
    existing = None if overwrite else check_compatible(out, settings)
    if state.is_main_process:
        if overwrite:
            _remove_store(out)
        _prepare(out, plan, settings, existing, data_spec)
    state.wait_for_everyone()

    manifest = fs.read_manifest(out)
    ranges = fs.shard_ranges(plan.num_rows, shard_size)
    done = {record["index"] for record in manifest["shards"]}
    todo = [k for k in range(len(ranges)) if k not in done]
    mine = todo[state.process_index :: state.num_processes]
    if state.is_main_process and done:
        logger.info("resuming %s: %d of %d shards already done", out, len(done), len(ranges))
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
        _prepare(out, plan, settings, fs.read_manifest(out), data_spec)
    state.wait_for_everyone()
    store = fs.FeatureStore.open(out)
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
    progress_file = out / f"progress-rank-{rank:05d}.json"
    written: list[dict] = []
    dim = manifest["embedding_dim"]
    total = sum(ranges[k][1] - ranges[k][0] for k in mine)
    chunk = batch_size * _BATCHES_PER_CALL
    where = dict(plan_hash=plan.plan_hash, chunk=chunk)
    embeddings: list[torch.Tensor] = []
    rewards: list[torch.Tensor] = []
    index, start, saved = -1, 0, 0  # the shard in progress, its first row, rows on disk
    try:
        with tqdm(total=total, disable=not progress, unit="text", desc="extract") as bar:
            for index in mine:
                start, end = ranges[index]
                resumed = partial.load_partial(out, index, start=start, end=end, dim=dim, **where)
                embeddings, rewards = ([resumed[0]], [resumed[1]]) if resumed else ([], [])
                saved = sum(len(r) for r in rewards)
                bar.update(saved)
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
                record = fs.write_shard(
                    out, index, start, torch.cat(embeddings), torch.cat(rewards),
                    storage_dtype=storage_dtype,
                )  # fmt: skip
                # Only now, with the shard safely on disk, is it recorded as done.
                if world_size == 1:
                    _record_shard(out, manifest, record, num_shards=len(ranges))
                else:
                    written.append(record)
                    atomic_write_json(
                        progress_file,
                        {"plan_hash": plan.plan_hash, "rank": rank, "shards": written},
                    )
                partial.remove_partial(out, index)
                embeddings, rewards, saved = [], [], 0
    except (Interrupted, KeyboardInterrupt) as exc:
        rows = sum(len(r) for r in rewards)
        if rows > saved:
            rows = _save_partial(out, index, start, embeddings, rewards, where)
        kept = len(manifest["shards"]) + len(written)
        more = f" (and {rows:,} rows of the next)" if rows else ""
        raise Interrupted(
            f"interrupted: {kept} of {len(ranges)} shards kept{more}; "
            "rerun the same command to resume",
            signum=getattr(exc, "signum", 2),
        ) from None


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
    fs.write_manifest(out, manifest)


def _save_partial(out, index, start, embeddings, rewards, where) -> int:
    """Save the unfinished shard's rows so far; returns how many."""
    rew = torch.cat(rewards)
    partial.save_partial(out, index, torch.cat(embeddings), rew, start=start, **where)
    return int(rew.shape[0])
