"""Rows already in a feature store, reused instead of embedding their texts again.

A text's row is found by its key (`ebrm.features.plan.text_key`, the sha256 of the formatted
text, stored in `rows.safetensors`), and only in a store made by the same RM with the same
settings: weights hash, embedding size, compute dtype, max length and truncation side must
all be identical, or the same text would not give the same embedding.

* `StoredRows`: a store's rows by key; `embed(rm, texts)` reads the rows of texts it holds
  and embeds only the others (each unique text once).
* `ReusingRM`: a base RM whose `embed_texts` / `embed_conversations` go through a
  `StoredRows`, so evaluation, best-of-n and scoring reuse stored rows without knowing it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from ebrm._provenance import provenance_differences
from ebrm.errors import IncompatibleArtifactError
from ebrm.features.plan import text_key
from ebrm.features.store import FeatureStore

logger = logging.getLogger(__name__)


class StoredRows:
    """The rows of a complete feature store, found by text key.

    Only the keys are read up front (32 bytes a row); embeddings are read shard by shard when
    a requested text lives there, and the last shard read is kept (consecutive requests
    usually hit the same shard: stores and requests are both ordered longest text first).

    Attributes:
        reused: rows read from the store so far.
        embedded: texts embedded with the RM so far (each unique missing text once per call).
    """

    def __init__(self, store: FeatureStore) -> None:
        store._require_complete()  # an incomplete store: raises, naming the fix
        keys = store.row_keys()
        if keys is None:
            raise IncompatibleArtifactError(
                f"The feature store {store.path} records no text keys (feature-store format "
                f"version {store.manifest.get('format_version')}), so its rows cannot be found "
                "by text; re-run the same `ebrm extract` command to add them (no re-embedding)."
            )
        self.store = store
        self._row_of = {bytes(k): i for i, k in enumerate(keys.numpy())}
        self._shards = sorted(store.manifest["shards"], key=lambda r: r["start"])
        self._starts = [int(r["start"]) for r in self._shards]
        self._cached: tuple[int, torch.Tensor, torch.Tensor] | None = None
        self.reused = 0
        self.embedded = 0

    @classmethod
    def open(cls, path: str | Path) -> StoredRows:
        return cls(FeatureStore.open(path))

    @property
    def provenance(self) -> dict[str, Any]:
        return self.store.provenance

    def check_same_rm(self, provenance: Mapping[str, Any], *, name: str, fix: str) -> None:
        """Raise unless `provenance` (of the RM that would embed the rest) is the store's.

        Raises:
            IncompatibleArtifactError: one line naming every differing field, both values
                (the store's first) and `fix`.
        """
        differ = provenance_differences(self.provenance, provenance)
        if differ:
            raise IncompatibleArtifactError(
                f"The feature store {self.store.path} was made by another base RM or with other "
                f"settings than {name} ({'; '.join(differ)}), so its rows cannot be reused; {fix}"
            )

    def check_extraction(self, provenance: Mapping[str, Any], storage_dtype: str) -> None:
        """Raise unless an extraction by `provenance` into `storage_dtype` would store
        exactly these rows (same RM and settings; float32 rows, or the same storage dtype).

        Raises:
            IncompatibleArtifactError: naming what differs and the fix.
        """
        self.check_same_rm(
            provenance, name="this extraction's RM",
            fix="reuse a store extracted with the same RM and settings (or reuse none)",
        )  # fmt: skip
        theirs = self.store.manifest.get("storage_dtype")
        if theirs not in ("float32", storage_dtype):
            raise IncompatibleArtifactError(
                f"The feature store {self.store.path} stores embeddings as {theirs}, this "
                f"extraction as {storage_dtype}; its rows cannot be reused without changing "
                "them. Reuse a store of the same storage dtype (or float32), or none."
            )

    def __len__(self) -> int:
        return len(self._row_of)

    def __contains__(self, text: str) -> bool:
        return text_key(text) in self._row_of

    def _shard(self, row: int) -> tuple[int, torch.Tensor, torch.Tensor]:
        """(start, embeddings, rewards) of the shard holding `row` (float32)."""
        import bisect

        index = bisect.bisect_right(self._starts, row) - 1
        record = self._shards[index]
        if self._cached is None or self._cached[0] != record["start"]:
            emb, rew = self.store.read_shard(record)
            self._cached = (int(record["start"]), emb, rew)
        return self._cached

    def rows(self, texts: Sequence[str]) -> list[int | None]:
        """The store row of each text, or None where the store does not hold it."""
        return [self._row_of.get(text_key(text)) for text in texts]

    def embed(
        self, rm: Any, texts: Sequence[str], *, batch_size: int = 16, progress: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(embeddings (N, D) float32, rewards (N,) float32) of `texts`, in input order:
        stored rows where the store has the text, `rm.embed_texts` of the others (once
        each)."""
        texts = list(texts)
        rows = self.rows(texts)
        missing = list(dict.fromkeys(t for t, r in zip(texts, rows, strict=True) if r is None))
        dim = int(self.store.dim)
        embeddings = torch.empty(len(texts), dim, dtype=torch.float32)
        rewards = torch.empty(len(texts), dtype=torch.float32)
        if missing:
            emb, rew = rm.embed_texts(missing, batch_size=batch_size, progress=progress)
            position = {text: i for i, text in enumerate(missing)}
            at = [i for i, r in enumerate(rows) if r is None]
            take = torch.tensor([position[texts[i]] for i in at], dtype=torch.long)
            embeddings[at] = emb.to(torch.float32)[take]
            rewards[at] = rew.to(torch.float32)[take]
        for i in sorted((i for i, r in enumerate(rows) if r is not None), key=lambda i: rows[i]):
            start, emb, rew = self._shard(rows[i])
            embeddings[i] = emb[rows[i] - start]
            rewards[i] = rew[rows[i] - start]
        self.reused += len(texts) - sum(r is None for r in rows)
        self.embedded += len(missing)
        return embeddings, rewards


class ReusingRM:
    """A base RM that reads the embeddings of texts already in a feature store.

    Everything else (format, provenance, weights_hash, ...) is the wrapped RM's, so it can be
    attached to an `EnergyRewardModel` in its place.

    Raises:
        IncompatibleArtifactError: the store was made by another RM or with other settings.
    """

    def __init__(self, rm: Any, stored: StoredRows, *, name: str = "the base RM") -> None:
        stored.check_same_rm(
            rm.provenance(), name=name,
            fix="pass a store extracted with this RM and settings, or none",
        )  # fmt: skip
        self.rm = rm
        self.stored = stored

    def __getattr__(self, name: str) -> Any:
        if name in ("rm", "stored"):  # not set yet (e.g. while unpickling)
            raise AttributeError(name)
        return getattr(self.rm, name)

    def embed_texts(
        self, texts: Sequence[str], *, batch_size: int = 16, progress: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return self.stored.embed(self.rm, texts, batch_size=batch_size, progress=progress)

    def embed_conversations(
        self, convs: Sequence[Any], *, batch_size: int = 16, progress: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor]:
        texts = [self.rm.format(conv) for conv in convs]
        reused, embedded = self.stored.reused, self.stored.embedded
        out = self.embed_texts(texts, batch_size=batch_size, progress=progress)
        logger.info(
            "%d of %d texts read from %s, %d embedded",
            self.stored.reused - reused,
            len(texts),
            self.stored.store.path,
            self.stored.embedded - embedded,
        )
        return out
