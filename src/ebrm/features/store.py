"""The on-disk feature store (DESIGN §3 [contract]): a manifest plus safetensors shards.

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
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save as safetensors_save

from ebrm._io import atomic_write_bytes, atomic_write_json, sha256_file
from ebrm.errors import CorruptArtifactError, IncompatibleArtifactError
from ebrm.features.table import PairFeatures

logger = logging.getLogger(__name__)

FORMAT_NAME = "ebrm-feature-store"
# 2: pairs.json records each pair's prompt hash (`ebrm.data.prompt_hash`). Version 1 stores
# still load, without prompt hashes (re-running the same `ebrm extract` adds them).
# 3: rows.safetensors records each row's text key (`ebrm.features.plan.text_key`), so that
# later commands reuse rows instead of embedding a text again. Version 2 stores still load;
# their rows cannot be reused until the same `ebrm extract` is re-run (no re-embedding).
FORMAT_VERSION = 3
MANIFEST = "manifest.json"
PAIRS_TENSORS = "pairs.safetensors"
PAIRS_META = "pairs.json"
ROWS = "rows.safetensors"
STORAGE_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
_DTYPE_ALIASES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}


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


@dataclass(frozen=True)
class FeatureStore:
    """A feature store directory, opened for reading (see the module docstring).

    Example:
        >>> features = FeatureStore.open("features/").load()  # doctest: +SKIP
    """

    path: Path
    manifest: dict[str, Any]

    @classmethod
    def open(cls, path: str | Path) -> FeatureStore:
        """Open the store at `path` (reads only the manifest).

        Raises:
            IncompatibleArtifactError: `path` is not a feature store (or a newer format).
            CorruptArtifactError: the manifest is damaged.
        """
        path = Path(path)
        return cls(path, read_manifest(path))

    @property
    def provenance(self) -> dict[str, Any]:
        """The base RM's provenance (name_or_path, weights_hash, dtype, max_length, ...)."""
        return dict(self.manifest.get("base_rm", {}))

    @property
    def num_rows(self) -> int:
        return int(self.manifest["num_rows"])

    @property
    def num_pairs(self) -> int:
        return int(self.manifest["num_pairs"])

    @property
    def dim(self) -> int:
        return int(self.manifest["embedding_dim"])

    @property
    def complete(self) -> bool:
        return bool(self.manifest["complete"])

    def _shards(self) -> list[dict[str, Any]]:
        return sorted(self.manifest["shards"], key=lambda record: record["start"])

    def verify(self) -> None:
        """Check every file against its sha256 in the manifest.

        Raises:
            CorruptArtifactError: naming the first file that is missing or fails its checksum.
        """
        for record in self._shards():
            self._check_file(record["file"], record["sha256"])
        for name, digest in self.manifest.get("pairs_sha256", {}).items():
            self._check_file(name, digest)

    def _check_file(self, name: str, digest: str) -> None:
        file = self.path / name
        if not file.is_file():
            raise CorruptArtifactError(
                f"{file} is listed in {MANIFEST} but missing; re-run the same `ebrm extract` "
                "command to re-extract it."
            )
        if sha256_file(file) != digest:
            raise CorruptArtifactError(
                f"{file} fails its sha256 checksum (the file is corrupted or was modified); "
                "re-run the same `ebrm extract` command to re-extract it."
            )

    def _require_complete(self) -> None:
        if not self.complete:
            done = sum(r["end"] - r["start"] for r in self.manifest["shards"])
            raise IncompatibleArtifactError(
                f"The feature store {self.path} is incomplete ({done} of {self.num_rows} rows); "
                "re-run the same `ebrm extract` command to finish it."
            )

    def iter_shards(
        self, *, verify: bool = True
    ) -> Iterator[tuple[int, torch.Tensor, torch.Tensor]]:
        """Yield `(start, embeddings (n, D) float32, rewards (n,) float32)` per shard, in order.

        Shards are memory-mapped (`safe_open`), so only one shard is in memory at a time.
        """
        self._require_complete()
        for record in self._shards():
            if verify:
                self._check_file(record["file"], record["sha256"])
            file = self.path / record["file"]
            try:
                with safe_open(file, framework="pt") as handle:
                    emb = handle.get_tensor("embeddings").to(torch.float32)
                    rew = handle.get_tensor("rewards").to(torch.float32)
            except Exception as exc:  # safetensors raises its own error types
                raise CorruptArtifactError(f"{file} cannot be read as safetensors: {exc}") from exc
            n = record["end"] - record["start"]
            if emb.shape != (n, self.dim) or rew.shape != (n,):
                raise CorruptArtifactError(
                    f"{file} holds embeddings {tuple(emb.shape)} / rewards {tuple(rew.shape)}; "
                    f"{MANIFEST} says ({n}, {self.dim}) rows {record['start']}..{record['end']}."
                )
            yield record["start"], emb, rew

    def load_rows(self, *, verify: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """All rows: `(embeddings (N, D) float32, rewards (N,) float32)`.

        Raises:
            IncompatibleArtifactError: the store is incomplete.
            CorruptArtifactError: a shard is missing, fails its checksum or has the wrong shape.
        """
        embeddings = torch.empty(self.num_rows, self.dim, dtype=torch.float32)
        rewards = torch.empty(self.num_rows, dtype=torch.float32)
        covered = 0
        for start, emb, rew in self.iter_shards(verify=verify):
            if start != covered:
                raise CorruptArtifactError(
                    f"{self.path / MANIFEST}: shards do not cover rows {covered}..{start}; "
                    "re-run `ebrm extract` with --overwrite."
                )
            embeddings[start : start + len(rew)] = emb
            rewards[start : start + len(rew)] = rew
            covered = start + len(rew)
        if covered != self.num_rows:
            raise CorruptArtifactError(
                f"{self.path / MANIFEST}: shards cover {covered} of {self.num_rows} rows; "
                "re-run `ebrm extract` with --overwrite."
            )
        return embeddings, rewards

    def pair_table(self, *, verify: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """`(chosen (P,), rejected (P,))` int64 row indices."""
        if verify:
            for name, digest in self.manifest.get("pairs_sha256", {}).items():
                self._check_file(name, digest)
        file = self.path / PAIRS_TENSORS
        try:
            with safe_open(file, framework="pt") as handle:
                return handle.get_tensor("chosen"), handle.get_tensor("rejected")
        except Exception as exc:
            raise CorruptArtifactError(f"{file} cannot be read: {exc}") from exc

    def _pair_meta(self, *, verify: bool) -> dict[str, Any]:
        file = self.path / PAIRS_META
        if verify and PAIRS_META in self.manifest.get("pairs_sha256", {}):
            self._check_file(PAIRS_META, self.manifest["pairs_sha256"][PAIRS_META])
        try:
            meta = json.loads(file.read_text(encoding="utf-8"))
            if not isinstance(meta, dict):
                raise TypeError("not a JSON object")
            return meta
        except (OSError, UnicodeDecodeError, ValueError, TypeError) as exc:
            raise CorruptArtifactError(f"{file} cannot be read: {exc}") from exc

    def pair_info(self, *, verify: bool = True) -> tuple[list[str], list[str | None]]:
        """`(ids, subsets)`: one entry per pair, in pair order.

        Raises:
            CorruptArtifactError: pairs.json is missing, damaged or fails its checksum.
        """
        meta = self._pair_meta(verify=verify)
        try:
            return list(meta["ids"]), list(meta["subsets"])
        except (KeyError, TypeError) as exc:
            raise CorruptArtifactError(f"{self.path / PAIRS_META} cannot be read: {exc}") from exc

    def prompt_hashes(self, *, verify: bool = True) -> list[str] | None:
        """Each pair's prompt hash (`ebrm.data.prompt_hash`), or None for a version 1 store.

        Raises:
            CorruptArtifactError: pairs.json is damaged, or its hashes do not match the pairs.
        """
        hashes = self._pair_meta(verify=verify).get("prompt_hashes")
        if hashes is None:
            return None
        if not isinstance(hashes, list) or len(hashes) != self.num_pairs:
            raise CorruptArtifactError(
                f"{self.path / PAIRS_META} has prompt_hashes for "
                f"{len(hashes) if isinstance(hashes, list) else '?'} pairs; {MANIFEST} says "
                f"{self.num_pairs}. Re-run the same `ebrm extract` command to rewrite it."
            )
        return [str(h) for h in hashes]

    def row_keys(self, *, verify: bool = True) -> torch.Tensor | None:
        """(N, 32) uint8 text key of every row (`ebrm.features.plan.text_key`), or None for
        a store written before format version 3.

        Raises:
            CorruptArtifactError: rows.safetensors is missing, damaged or of the wrong shape.
        """
        digest = self.manifest.get("pairs_sha256", {}).get(ROWS)
        if digest is None:
            return None
        if verify:
            self._check_file(ROWS, digest)
        file = self.path / ROWS
        try:
            with safe_open(file, framework="pt") as handle:
                keys = handle.get_tensor("text_sha256")
        except Exception as exc:
            raise CorruptArtifactError(f"{file} cannot be read: {exc}") from exc
        if tuple(keys.shape) != (self.num_rows, 32):
            raise CorruptArtifactError(
                f"{file} holds {tuple(keys.shape)} text keys; {MANIFEST} says {self.num_rows} "
                "rows. Re-run the same `ebrm extract` command to rewrite it."
            )
        return keys

    def load(self, *, verify: bool = True) -> PairFeatures:
        """The whole store as `PairFeatures` (float32, whatever the storage dtype).

        Args:
            verify: check sha256 checksums first (default). `False` skips hashing, for
                trusted stores read many times.

        Raises:
            IncompatibleArtifactError: the store is incomplete.
            CorruptArtifactError: a file is missing, damaged or inconsistent with the manifest.
        """
        embeddings, rewards = self.load_rows(verify=verify)
        chosen, rejected = self.pair_table(verify=verify)
        if chosen.shape != (self.num_pairs,):
            raise CorruptArtifactError(
                f"{self.path / PAIRS_TENSORS} holds {tuple(chosen.shape)} pairs; "
                f"{MANIFEST} says {self.num_pairs}."
            )
        hashes = self.prompt_hashes(verify=verify)
        if hashes is None:
            logger.warning(
                "%s records no prompt hashes (feature-store format version %s): splits of it "
                "group by pair, not by prompt. Re-run the same `ebrm extract` command to add "
                "them (no re-embedding).",
                self.path,
                self.manifest.get("format_version"),
            )
        return PairFeatures(embeddings, rewards, chosen, rejected, hashes)


def load_features(path: str | Path, *, verify: bool = True) -> PairFeatures:
    """Read a complete feature store as `PairFeatures` (see `FeatureStore.load`)."""
    return FeatureStore.open(path).load(verify=verify)
