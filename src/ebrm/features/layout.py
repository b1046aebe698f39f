"""The feature store's files (DESIGN §3 [contract]): names, format version, writers, manifest.

Layout of a store directory::

    manifest.json            format version, base RM provenance, settings, shard list, complete
    pairs.safetensors        chosen (P,) int64, rejected (P,) int64: the rows of each pair
    pairs.json               {"ids": [...], "subsets": [...], "prompt_hashes": [...]}: per pair,
                             kept out of the manifest (prompt_hashes since format version 2)
    rows.safetensors         text_sha256 (N, 32) uint8: sha256 of each row's formatted text,
                             the key later commands find a text's row by (format version 3)
    shard-00000.safetensors  embeddings (n, D) in the storage dtype, rewards (n,) float32
    ...

Rows are the unique formatted texts of the data (an identical text is embedded once). Shard
`k` always holds rows `[k * shard_size, min((k + 1) * shard_size, num_rows))`, so a shard's
name says which rows it holds whichever process wrote it. Every file is written atomically and
a shard is recorded in the manifest (with its sha256) only after it is on disk, which is what
makes an interrupted extraction resumable without losing or duplicating rows.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save as safetensors_save

from ebrm._io import atomic_write_bytes, atomic_write_json
from ebrm.errors import CorruptArtifactError, IncompatibleArtifactError
from ebrm.features.names import FORMAT_NAME, MANIFEST_NAME
from ebrm.rm.names import DTYPE_ALIASES as _DTYPE_ALIASES

# 2: pairs.json records each pair's prompt hash (`ebrm.data.prompt_hash`). Version 1 stores
# still load, without prompt hashes (re-running the same `ebrm extract` adds them).
# 3: rows.safetensors records each row's text key (`ebrm.features.plan.text_key`), so that
# later commands reuse rows instead of embedding a text again. Version 2 stores still load;
# their rows cannot be reused until the same `ebrm extract` is re-run (no re-embedding).
# 4: max_length and truncation_side are written once, in base_rm (the RM's provenance);
# version <= 3 manifests also repeat them at the top level, and still load
# (`extraction_setting` reads either).
# 5: the manifest records the rows' forward batch size (`batch_size`) and base_rm records
# the padding side (`padding_side`); version <= 4 manifests lack them and still load.
FORMAT_VERSION = 5
MANIFEST = MANIFEST_NAME
PAIRS_TENSORS = "pairs.safetensors"
PAIRS_META = "pairs.json"
ROWS = "rows.safetensors"
STORAGE_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def normalize_storage_dtype(name: str | torch.dtype) -> str:
    """The canonical storage dtype name (float32, bfloat16 or float16).

    Raises:
        ConfigError: for any other dtype.
    """
    from ebrm.errors import ConfigError

    if isinstance(name, torch.dtype):
        for key, value in STORAGE_DTYPES.items():
            if value == name:
                return key
        name = str(name)
    key = _DTYPE_ALIASES.get(str(name).lower(), str(name).lower())
    if key not in STORAGE_DTYPES:
        raise ConfigError(
            f"Unknown storage dtype {name!r}; choose one of float32, bfloat16, float16 "
            "(embeddings are stored in it; rewards are always float32)."
        )
    return key


def shard_name(index: int) -> str:
    return f"shard-{index:05d}.safetensors"


def shard_ranges(num_rows: int, shard_size: int) -> list[tuple[int, int]]:
    """Row range `[start, end)` of every shard."""
    return [(s, min(s + shard_size, num_rows)) for s in range(0, num_rows, shard_size)]


def write_shard(
    directory: Path,
    index: int,
    start: int,
    embeddings: torch.Tensor,
    rewards: torch.Tensor,
    *,
    storage_dtype: str,
) -> dict[str, Any]:
    """Write shard `index` (rows `start ...`) atomically; return its manifest record."""
    emb = embeddings.detach().to("cpu", STORAGE_DTYPES[storage_dtype]).contiguous()  # (n, D)
    rew = rewards.detach().to("cpu", torch.float32).reshape(-1).contiguous()  # (n,)
    if emb.ndim != 2 or emb.shape[0] != rew.shape[0]:
        raise ValueError(
            f"shard {index}: embeddings {tuple(emb.shape)} and rewards {tuple(rew.shape)} disagree"
        )
    end = start + int(emb.shape[0])
    data = safetensors_save(
        {"embeddings": emb, "rewards": rew},
        metadata={"start": str(start), "end": str(end), "format": FORMAT_NAME},
    )
    name = shard_name(index)
    atomic_write_bytes(directory / name, data)
    return {
        "index": index,
        "file": name,
        "start": start,
        "end": end,
        "sha256": hashlib.sha256(data).hexdigest(),
    }


def write_pair_table(
    directory: Path,
    chosen: torch.Tensor,
    rejected: torch.Tensor,
    ids: list[str],
    subsets: list[str | None],
    prompt_hashes: list[str] | None = None,
) -> dict[str, str]:
    """Write `pairs.safetensors` and `pairs.json`; return their checksums for the manifest."""
    tensors = safetensors_save(
        {
            "chosen": chosen.to(torch.int64).contiguous(),
            "rejected": rejected.to(torch.int64).contiguous(),
        }
    )
    record: dict[str, Any] = {"ids": ids, "subsets": subsets}
    if prompt_hashes is not None:
        record["prompt_hashes"] = prompt_hashes
    meta = (json.dumps(record, ensure_ascii=False) + "\n").encode()
    atomic_write_bytes(directory / PAIRS_TENSORS, tensors)
    atomic_write_bytes(directory / PAIRS_META, meta)
    return {
        PAIRS_TENSORS: hashlib.sha256(tensors).hexdigest(),
        PAIRS_META: hashlib.sha256(meta).hexdigest(),
    }


def write_row_keys(directory: Path, keys: torch.Tensor) -> str:
    """Write `rows.safetensors` ((N, 32) uint8 text keys); return its sha256."""
    data = safetensors_save({"text_sha256": keys.to(torch.uint8).contiguous()})
    atomic_write_bytes(directory / ROWS, data)
    return hashlib.sha256(data).hexdigest()


def extraction_setting(manifest: dict[str, Any], key: str) -> Any:
    """A tokenisation setting ("max_length" or "truncation_side") of a manifest or of a
    run's settings: from `base_rm`, or the top level where a version <= 3 manifest also has
    it there (None if neither)."""
    value = (manifest.get("base_rm") or {}).get(key)
    return manifest.get(key) if value is None else value


def write_manifest(directory: Path, manifest: dict[str, Any]) -> None:
    atomic_write_json(directory / MANIFEST, manifest)


def read_manifest(path: Path) -> dict[str, Any]:
    """Read and sanity-check `manifest.json` of the store at `path`.

    Raises:
        IncompatibleArtifactError: not a feature store, or a newer format version.
        CorruptArtifactError: the manifest is not valid JSON or lacks fields.
    """
    file = Path(path) / MANIFEST
    if not file.is_file():
        raise IncompatibleArtifactError(
            f"{path} is not an ebrm feature store (no {MANIFEST}); create one with `ebrm extract`."
        )
    try:
        manifest = json.loads(file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CorruptArtifactError(
            f"{file} is not valid JSON ({exc}); re-create the store with `ebrm extract ... "
            "--overwrite`."
        ) from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
        raise IncompatibleArtifactError(
            f"{file} is not an ebrm feature-store manifest (format={manifest.get('format')!r})."
            if isinstance(manifest, dict)
            else f"{file} is not an ebrm feature-store manifest."
        )
    version = manifest.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise IncompatibleArtifactError(
            f"{file} has feature-store format version {version!r}; this ebrm reads versions "
            f"<= {FORMAT_VERSION}. Upgrade ebrm or re-extract the store."
        )
    missing = [
        key
        for key in ("num_rows", "num_pairs", "embedding_dim", "storage_dtype", "shards", "complete")
        if key not in manifest
    ]
    if missing:
        raise CorruptArtifactError(
            f"{file} lacks the fields {missing}; re-create the store with `ebrm extract ... "
            "--overwrite`."
        )
    return manifest
