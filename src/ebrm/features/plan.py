"""The extraction plan: the unique formatted texts of a data set, in row order, and which
rows form each pair. It is fixed (and hashed) before any row is embedded.

`build_plan` holds no formatted text: one pass formats every response to get its key
(sha256) and length, rows are deduplicated by key and sorted by length, a second pass
streams the texts in row order into the plan hash, and `plan.texts[lo:hi]` formats a
range of rows again when a rank extracts it. A rank's memory then grows by a few dozen
bytes per text, not by the texts (~1 KB each at 1M pairs of 2 KB).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, overload

import numpy as np
import torch

from ebrm.data.split import prompt_hash
from ebrm.data.types import Conversation, PreferencePair
from ebrm.errors import ConfigError


class EmbeddingModel(Protocol):
    """What extraction needs from a base RM (`ebrm.rm.BaseRewardModel` provides it)."""

    hidden_size: int

    def format(self, conv: Conversation) -> str: ...

    def embed_texts(
        self, texts: list[str], *, batch_size: int = 16, progress: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor]: ...

    def provenance(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class ExtractionPlan:
    """The rows to extract and which rows form each pair; fixed before extraction starts."""

    texts: Sequence[str]  # unique formatted texts, in row order (longest first); may be lazy
    chosen: torch.Tensor  # (P,) int64 row of each pair's chosen response
    rejected: torch.Tensor  # (P,) int64 row of each pair's rejected response
    ids: list[str]  # per pair, its id in the source data
    subsets: list[str | None]  # per pair, its subset/domain when known
    prompt_hashes: list[str] | None  # per pair, `ebrm.data.prompt_hash` (not in plan_hash)
    plan_hash: str  # sha256 of the texts (in order) and the pair table
    keys: torch.Tensor  # (N, 32) uint8, `text_key` of each row: how later runs find it

    @property
    def num_rows(self) -> int:
        return len(self.texts)


def text_key(text: str) -> bytes:
    """The key a row is stored and found by: sha256 of its formatted text (32 bytes)."""
    return hashlib.sha256(text.encode("utf-8")).digest()


def text_keys(texts: Sequence[str]) -> torch.Tensor:
    """(N, 32) uint8: `text_key` of each text."""
    data = b"".join(text_key(t) for t in texts)
    return torch.frombuffer(bytearray(data), dtype=torch.uint8).reshape(len(texts), 32)


class PlanTexts(Sequence[str]):
    """The plan's texts without holding them: row `i` is formatted from its source
    conversation when it is read (`texts[lo:hi]` formats that range only)."""

    def __init__(self, conversations: Callable[[int], Conversation], sources: np.ndarray, fmt):
        self._conversation = conversations  # source index -> conversation
        self._sources = sources  # (N,) int64, the source of each row
        self._format = fmt

    def __len__(self) -> int:
        return len(self._sources)

    @overload
    def __getitem__(self, index: int) -> str: ...
    @overload
    def __getitem__(self, index: slice) -> list[str]: ...
    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self._format(self._conversation(int(s))) for s in self._sources[index]]
        return self._format(self._conversation(int(self._sources[index])))

    def __iter__(self) -> Iterator[str]:
        for source in self._sources:
            yield self._format(self._conversation(int(source)))


def plan_rows(
    chosen_texts: Sequence[str],
    rejected_texts: Sequence[str],
    *,
    ids: Sequence[str] | None = None,
    subsets: Sequence[str | None] | None = None,
    prompt_hashes: Sequence[str] | None = None,
) -> ExtractionPlan:
    """Deduplicate the formatted texts of P pairs into rows.

    Rows are ordered longest text first (ties in order of first appearance): consecutive rows
    then have similar lengths, so batches need little padding, and an out-of-memory error
    shows up in the first minute of a long run rather than at the end.
    """
    if len(chosen_texts) != len(rejected_texts):
        raise ValueError("chosen_texts and rejected_texts must have the same length")
    both = [t for pair in zip(chosen_texts, rejected_texts, strict=True) for t in pair]
    keys = text_keys(both).numpy()
    lengths = np.fromiter((len(t) for t in both), dtype=np.int64, count=len(both))
    return _plan(keys, lengths, both.__getitem__, ids, subsets, prompt_hashes)


def _rows(keys: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Deduplicate 2P texts (interleaved chosen, rejected) by key and order the rows.

    Args:
        keys: (2P, 32) uint8 `text_key` of each text.
        lengths: (2P,) int64 length (characters) of each text.

    Returns:
        (sources (N,) int64: the first text of each row, in row order;
         row (2P,) int64: the row of each text).
    """
    flat = np.ascontiguousarray(keys).view(np.dtype((np.void, 32))).ravel()
    _, first, inverse = np.unique(flat, return_index=True, return_inverse=True)  # (U,) (2P,)
    # longest first, ties in order of first appearance
    order = np.lexsort((first, -lengths[first]))  # (N,) unique index of each row
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return first[order].astype(np.int64), rank[inverse.ravel()].astype(np.int64)


def _plan(keys, lengths, text_of, ids, subsets, prompt_hashes, lazy=None) -> ExtractionPlan:
    """The plan of 2P texts given their keys and lengths; `text_of(j)` is text `j`."""
    sources, row = _rows(keys, lengths)
    chosen = torch.from_numpy(row[0::2].copy())
    rejected = torch.from_numpy(row[1::2].copy())
    digest = hashlib.sha256()
    for source in sources:
        encoded = text_of(int(source)).encode("utf-8")
        digest.update(len(encoded).to_bytes(8, "little") + encoded)
    digest.update(chosen.numpy().tobytes() + rejected.numpy().tobytes())
    n = len(row) // 2
    texts = lazy(sources) if lazy is not None else [text_of(int(s)) for s in sources]
    return ExtractionPlan(
        texts=texts,
        chosen=chosen,
        rejected=rejected,
        ids=list(ids) if ids is not None else [str(i) for i in range(n)],
        subsets=list(subsets) if subsets is not None else [None] * n,
        prompt_hashes=list(prompt_hashes) if prompt_hashes is not None else None,
        plan_hash=digest.hexdigest(),
        keys=torch.from_numpy(keys[sources]),
    )


def build_plan(rm: EmbeddingModel, pairs: Sequence[PreferencePair]) -> ExtractionPlan:
    """Format every response with the RM's template and deduplicate (see `plan_rows`),
    holding keys, lengths and row indices only: `plan.texts` formats rows when read."""
    if not pairs:
        raise ConfigError("No preference pairs to extract; check --data (it yielded 0 pairs).")

    def conversation(j: int) -> Conversation:
        pair = pairs[j // 2]
        return pair.rejected if j % 2 else pair.chosen

    def text_of(j: int) -> str:
        return rm.format(conversation(j))

    keys = np.empty((2 * len(pairs), 32), dtype=np.uint8)
    lengths = np.empty(2 * len(pairs), dtype=np.int64)
    for j in range(2 * len(pairs)):
        text = text_of(j)
        keys[j] = np.frombuffer(text_key(text), dtype=np.uint8)
        lengths[j] = len(text)
    return _plan(
        keys, lengths, text_of,
        ids=[pair.id or str(i) for i, pair in enumerate(pairs)],
        subsets=[pair.subset for pair in pairs],
        prompt_hashes=[prompt_hash(pair) for pair in pairs],
        lazy=lambda sources: PlanTexts(conversation, sources, rm.format),
    )  # fmt: skip
