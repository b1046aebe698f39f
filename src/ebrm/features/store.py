"""`FeatureStore`: a feature store directory opened for reading, checked file by file.

The files and how they are written are `ebrm.features.layout` (DESIGN §3 [contract]); its
names are re-exported here, where they have always been importable from.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open

from ebrm._io import sha256_file
from ebrm.errors import CorruptArtifactError, IncompatibleArtifactError
from ebrm.features.layout import (
    FORMAT_NAME,
    FORMAT_VERSION,
    MANIFEST,
    PAIRS_META,
    PAIRS_TENSORS,
    ROWS,
    STORAGE_DTYPES,
    normalize_storage_dtype,
    read_manifest,
    shard_name,
    shard_ranges,
    write_manifest,
    write_pair_table,
    write_row_keys,
    write_shard,
)
from ebrm.features.mapped import MappedRows, map_part, map_tensor
from ebrm.features.table import PairFeatures

logger = logging.getLogger(__name__)

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "MANIFEST",
    "PAIRS_META",
    "PAIRS_TENSORS",
    "ROWS",
    "STORAGE_DTYPES",
    "FeatureStore",
    "load_features",
    "normalize_storage_dtype",
    "read_manifest",
    "sha256_file",
    "shard_name",
    "shard_ranges",
    "write_manifest",
    "write_pair_table",
    "write_row_keys",
    "write_shard",
]


@dataclass(frozen=True)
class FeatureStore:
    """A feature store directory, opened for reading (files: `ebrm.features.layout`).

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

        Each shard is read, cast and released in turn, so only one shard is in memory at a
        time.
        """
        self._require_complete()
        for record in self._shards():
            emb, rew = self.read_shard(record, verify=verify)
            yield record["start"], emb, rew

    def read_shard(
        self, record: dict[str, Any], *, verify: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """`(embeddings (n, D) float32, rewards (n,) float32)` of one manifest shard record.

        Raises:
            CorruptArtifactError: the shard is missing, fails its checksum or has the wrong shape.
        """
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
        return emb, rew

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

    def mapped_rows(self, *, verify: bool = True) -> tuple[MappedRows, torch.Tensor]:
        """All rows without reading them: `(embeddings (N, D) memory-mapped in the storage
        dtype, read as float32 by index; rewards (N,) float32 in memory)`.

        Raises:
            IncompatibleArtifactError: the store is incomplete.
            CorruptArtifactError: a shard is missing, fails its checksum, has the wrong shape,
                or the shards do not cover the rows once.
        """
        self._require_complete()
        parts, mappings, rewards, covered = [], [], [], 0
        for record in self._shards():
            if verify:
                self._check_file(record["file"], record["sha256"])
            file = self.path / record["file"]
            (emb, mapping), rew = map_part(file, "embeddings"), map_tensor(file, "rewards")
            n = record["end"] - record["start"]
            if record["start"] != covered or emb.shape != (n, self.dim) or rew.shape != (n,):
                raise CorruptArtifactError(
                    f"{file} holds embeddings {tuple(emb.shape)} / rewards {tuple(rew.shape)} "
                    f"for rows {record['start']}..{record['end']}; {MANIFEST} says ({n}, "
                    f"{self.dim}) after row {covered}. Re-run `ebrm extract` with --overwrite."
                )
            parts.append(emb)
            mappings.append(mapping)
            rewards.append(rew.to(torch.float32).clone())  # (n,): small, read now
            covered = record["end"]
        if covered != self.num_rows or not parts:
            raise CorruptArtifactError(
                f"{self.path / MANIFEST}: shards cover {covered} of {self.num_rows} rows; "
                "re-run `ebrm extract` with --overwrite."
            )
        return MappedRows(parts, mappings), torch.cat(rewards)

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

    def load(self, *, verify: bool = True, memory_map: bool = False) -> PairFeatures:
        """The whole store as `PairFeatures` (float32, whatever the storage dtype).

        Args:
            verify: check sha256 checksums first (default). `False` skips hashing, for
                trusted stores read many times.
            memory_map: keep the embeddings memory-mapped in their storage dtype (a
                `MappedRows`, read as float32 by index: `mapped_rows`) instead of one float32
                tensor in memory. Training takes either; a store larger than memory needs this.

        Raises:
            IncompatibleArtifactError: the store is incomplete.
            CorruptArtifactError: a file is missing, damaged or inconsistent with the manifest.
        """
        if memory_map:
            embeddings, rewards = self.mapped_rows(verify=verify)
        else:
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


def load_features(
    path: str | Path, *, verify: bool = True, memory_map: bool = False
) -> PairFeatures:
    """Read a complete feature store as `PairFeatures` (see `FeatureStore.load`)."""
    return FeatureStore.open(path).load(verify=verify, memory_map=memory_map)
