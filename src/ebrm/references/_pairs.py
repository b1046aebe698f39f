"""Pairs read a chunk at a time from the caller's embedding table (which may be memory-mapped).

Every reference pass streams `(C, D)` float32 chunks of `e_chosen - e_rejected` gathered by
index, so no stage holds the `(P, D)` difference matrix: the table may be an fp16 store on
disk, and only `chunk_size` pairs are ever upcast at once.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

CHUNK_PAIRS = 4096  # pairs per chunk: (4096, 1024) float64 is 32 MB
# A fit passes over the pairs ~100 times; when every difference fits in this many bytes they
# are gathered once and kept (small data: gathering, not arithmetic, would dominate).
CACHE_BYTES = 64 * 2**20


def _take(table, index: torch.Tensor | None, start: int, stop: int) -> torch.Tensor:
    """Rows `index[start:stop]` (or `start:stop`) of `table`, half precision upcast to
    float32 (float64 tables stay float64: their pairs are fitted exactly)."""
    if index is None:
        part = table[start:stop]
    elif isinstance(table, torch.Tensor):
        part = table[index[start:stop]]
    else:  # e.g. a numpy memmap
        part = table[index[start:stop].numpy()]
    part = torch.as_tensor(part)
    return part.to(torch.promote_types(part.dtype, torch.float32))


class PairRows:
    """Pairs as rows of embedding tables, read `chunk_size` pairs at a time.

    Args:
        chosen: (N, D) table of the chosen responses' embeddings (or, with `rejected`
            None, of the differences themselves).
        rejected: (N', D) table of the rejected responses' embeddings (often `chosen`).
        chosen_index, rejected_index: (P,) row indices of each pair; None = rows in order.
        chunk_size: pairs per chunk.
    """

    def __init__(self, chosen, rejected=None, chosen_index=None, rejected_index=None, *,
                 chunk_size: int = CHUNK_PAIRS):  # fmt: skip
        self.chosen, self.rejected = chosen, rejected
        self.chosen_index = None if chosen_index is None else torch.as_tensor(chosen_index)
        self.rejected_index = None if rejected_index is None else torch.as_tensor(rejected_index)
        self.num_pairs = len(chosen) if self.chosen_index is None else len(self.chosen_index)
        self.dim = int(chosen.shape[1])
        self.chunk_size = int(chunk_size)
        self._cached: list[tuple[int, int, torch.Tensor]] | None = None

    def __len__(self) -> int:
        return self.num_pairs

    def row_chunks(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """(chosen, rejected) float32 rows, each (C, D), chunk by chunk."""
        for start in range(0, self.num_pairs, self.chunk_size):
            stop = min(self.num_pairs, start + self.chunk_size)
            yield (
                _take(self.chosen, self.chosen_index, start, stop),
                _take(self.rejected, self.rejected_index, start, stop),
            )

    def chunks(self) -> Iterator[tuple[int, int, torch.Tensor]]:
        """(start, stop, e_chosen - e_rejected) with the difference (C, D) float32 (float64
        for a float64 table); kept after the first pass when they fit in `CACHE_BYTES`."""
        if self._cached is not None:
            yield from self._cached
            return
        keep = self.num_pairs * self.dim * 8 <= CACHE_BYTES
        kept = []
        for part in self._gathered_chunks():
            if keep:
                kept.append(part)
            yield part
        if keep:
            self._cached = kept

    def _gathered_chunks(self) -> Iterator[tuple[int, int, torch.Tensor]]:
        for start in range(0, self.num_pairs, self.chunk_size):
            stop = min(self.num_pairs, start + self.chunk_size)
            d = _take(self.chosen, self.chosen_index, start, stop)
            if self.rejected is not None:
                d = d - _take(self.rejected, self.rejected_index, start, stop)
            yield start, stop, d

    def center(self) -> torch.Tensor:
        """(D,) float64 mean of every chosen and rejected row (a row counts once per pair)."""
        total = torch.zeros(self.dim, dtype=torch.float64)
        for a, b in self.row_chunks():
            total += a.to(torch.float64).sum(0) + b.to(torch.float64).sum(0)
        return total / max(2 * self.num_pairs, 1)


def as_pairs(chosen: torch.Tensor, rejected: torch.Tensor | None = None) -> PairRows:
    """`PairRows` over (P, D) pair embeddings given side by side (or over differences)."""
    return chosen if isinstance(chosen, PairRows) else PairRows(chosen, rejected)
