"""The rows of a shard still being extracted, saved every minute and on an interrupt.

A shard holds thousands of rows (minutes of an 8B model's time), and it is recorded only
when complete. So that a kill or Ctrl-C loses at most about a minute, the rows embedded so
far are written to `partial-NNNNN.safetensors` beside the store, atomically, every
`checkpoint_seconds` and when a SIGINT/SIGTERM arrives; a rerun continues the shard from
there. A partial file is used only for the same plan and the same chunking (so the batches
after it are exactly those of an uninterrupted run), and deleted once its shard is written.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import torch

from ebrm._io import atomic_write_bytes

logger = logging.getLogger(__name__)

PARTIAL = re.compile(r"partial-\d{5}\.safetensors")


def partial_name(index: int) -> str:
    return f"partial-{index:05d}.safetensors"


def save_partial(
    out: Path, index: int, embeddings: torch.Tensor, rewards: torch.Tensor, *,
    plan_hash: str, start: int, chunk: int,
) -> None:  # fmt: skip
    """Write the first `len(rewards)` rows of shard `index` (from row `start`)."""
    from safetensors.torch import save as safetensors_save

    data = safetensors_save(
        {
            "embeddings": embeddings.detach().to("cpu").contiguous(),
            "rewards": rewards.detach().to("cpu").reshape(-1).contiguous(),
        },
        metadata={"plan_hash": plan_hash, "start": str(start), "chunk": str(chunk)},
    )
    atomic_write_bytes(out / partial_name(index), data)


def load_partial(
    out: Path, index: int, *, plan_hash: str, start: int, end: int, chunk: int, dim: int
) -> tuple[torch.Tensor, torch.Tensor] | None:
    """The saved rows of shard `index`, or None when there are none usable."""
    from safetensors import safe_open

    path = out / partial_name(index)
    if not path.is_file():
        return None
    try:
        with safe_open(str(path), framework="pt") as handle:
            meta = handle.metadata() or {}
            emb, rew = handle.get_tensor("embeddings"), handle.get_tensor("rewards")
    except Exception as exc:  # a damaged file is only lost work, never an error
        logger.warning("%s cannot be read (%s); its rows will be extracted again", path, exc)
        path.unlink(missing_ok=True)
        return None
    where = dict(plan_hash=plan_hash, start=start, end=end, chunk=chunk, dim=dim)
    if not _usable(meta, tuple(emb.shape), int(rew.shape[0]), **where):
        path.unlink(missing_ok=True)
        return None
    return emb, rew


def partial_rows(
    out: Path, index: int, *, plan_hash: str, start: int, end: int, chunk: int, dim: int
) -> int:
    """How many rows `load_partial` will return for shard `index` (0: none usable), read
    from the file's header only, so that a resumed run can say what it kept first."""
    from safetensors import safe_open

    path = out / partial_name(index)
    if not path.is_file():
        return 0
    try:
        with safe_open(str(path), framework="pt") as handle:
            meta = handle.metadata() or {}
            shape = tuple(handle.get_slice("embeddings").get_shape())
            rows = int(handle.get_slice("rewards").get_shape()[0])
    except Exception:  # load_partial warns and discards it
        return 0
    where = dict(plan_hash=plan_hash, start=start, end=end, chunk=chunk, dim=dim)
    return rows if _usable(meta, shape, rows, **where) else 0


def _usable(
    meta: dict, emb_shape: tuple, rows: int, *, plan_hash: str, start: int, end: int,
    chunk: int, dim: int,
) -> bool:  # fmt: skip
    """A partial file continues this plan's shard with this chunking (so the batches after
    it are exactly those of an uninterrupted run)."""
    return (
        meta.get("plan_hash") == plan_hash
        and meta.get("start") == str(start)
        and meta.get("chunk") == str(chunk)
        and emb_shape == (rows, dim)
        and 0 < rows <= end - start
        and (rows % chunk == 0 or rows == end - start)
    )


def kept_text(shards: int, num_shards: int, rows: int, *, shard: int | None = None) -> str:
    """'1 of 3 shards and 128 rows of shard 2': what an interrupted extraction keeps (the
    rows of the unfinished shard, numbered from 1, are named when there are any)."""
    text = f"{shards} of {num_shards} shard{'s' if num_shards != 1 else ''}"
    if rows:
        text += f" and {rows:,} row{'s' if rows != 1 else ''}"
        if shard is not None:
            text += f" of shard {shard + 1}"
    return text


def remove_partial(out: Path, index: int) -> None:
    (out / partial_name(index)).unlink(missing_ok=True)
