"""`MappedRows`: a feature store's embeddings, memory-mapped in their storage dtype.

Training and scoring never need the whole (N, D) table in float32: a step reads a mini-batch
of rows, a scorer a chunk. `MappedRows` maps every shard's embeddings (one numpy memmap a
shard, no copy) and hands out float32 rows by index, cast per call, so a 1M x 4096 fp16
store costs the pages that are touched, not 16 GB of float32.
"""

from __future__ import annotations

import json
import mmap
import struct
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch

from ebrm.errors import CorruptArtifactError

# safetensors dtype names -> (numpy dtype the bytes are mapped as, torch dtype they are)
_DTYPES = {
    "F32": (np.float32, torch.float32),
    "F16": (np.float16, torch.float16),
    "BF16": (np.int16, torch.bfloat16),  # numpy has no bfloat16: map the bits, view in torch
}


def map_tensor(file: Path, name: str) -> torch.Tensor:
    """The tensor `name` of the safetensors `file`, memory-mapped read-only (no copy).

    Raises:
        CorruptArtifactError: the file is not safetensors, or lacks `name`, or its dtype is
            not one a feature store stores.
    """
    return map_part(file, name)[0]


def map_part(file: Path, name: str) -> tuple[torch.Tensor, mmap.mmap | None]:
    """`map_tensor`, and the mapping itself (to give its pages back after a pass over it;
    None for an empty tensor).

    Raises:
        CorruptArtifactError: as `map_tensor`.
    """
    try:
        with open(file, "rb") as handle:
            (size,) = struct.unpack("<Q", handle.read(8))
            header = json.loads(handle.read(size))
            info = header[name]
            np_dtype, torch_dtype = _DTYPES[info["dtype"]]
            begin, end = (int(v) for v in info["data_offsets"])
            shape = tuple(int(v) for v in info["shape"])
            count = int(np.prod(shape, dtype=np.int64))
            if end - begin != count * np.dtype(np_dtype).itemsize:
                raise ValueError(f"{name} holds {end - begin} bytes for shape {shape}")
            if count == 0:  # nothing to map (mmap refuses a length of 0)
                return torch.empty(shape, dtype=torch_dtype), None
            offset = 8 + size + begin
            aligned = offset - offset % mmap.ALLOCATIONGRANULARITY  # mmap's offset rule
            # copy-on-write (MAP_PRIVATE): a writable buffer torch accepts; nothing writes it
            mapping = mmap.mmap(
                handle.fileno(), offset - aligned + end - begin, access=mmap.ACCESS_COPY,
                offset=aligned,
            )  # fmt: skip
        array = np.frombuffer(mapping, dtype=np_dtype, count=count, offset=offset - aligned)
    except (OSError, ValueError, KeyError, TypeError, struct.error) as exc:
        raise CorruptArtifactError(f"{file} cannot be read as safetensors: {exc}") from exc
    return torch.from_numpy(array.reshape(shape)).view(torch_dtype), mapping


def _release(mapping: mmap.mmap | None) -> None:
    """Drop a mapping's resident pages (they are read again from the file if touched), so a
    pass over a whole store holds one shard's pages at a time, not the store's."""
    if mapping is not None and hasattr(mmap, "MADV_DONTNEED"):
        mapping.madvise(mmap.MADV_DONTNEED)


class MappedRows:
    """(N, D) rows kept in parts (one a shard), read as float32 by index.

    Indexing with a 1-D index tensor (or list, or slice) returns a new float32 tensor of
    those rows, like indexing a float32 tensor of the whole table would, with the same
    values: the storage dtype widens to float32 exactly.

    Example:
        >>> rows = FeatureStore.open("features/").mapped_rows()  # doctest: +SKIP
        >>> batch = rows[torch.tensor([3, 17, 4])]  # (3, D) float32
    """

    dtype = torch.float32  # what indexing returns

    def __init__(
        self, parts: Sequence[torch.Tensor], mappings: Sequence[mmap.mmap | None] | None = None
    ) -> None:
        if not parts:
            raise ValueError("MappedRows needs at least one part")
        dims = {int(p.shape[1]) for p in parts}
        if len(dims) != 1 or any(p.ndim != 2 for p in parts):
            raise ValueError("every part must be a 2-D (rows, D) tensor of the same D")
        self.parts = list(parts)
        # each part's mapping (`map_part`), if memory-mapped: its pages are given back after
        # every read, so at most one shard's are resident
        self.mappings = list(mappings) if mappings is not None else [None] * len(self.parts)
        sizes = torch.tensor([int(p.shape[0]) for p in parts], dtype=torch.long)
        self.starts = torch.cumsum(sizes, 0) - sizes  # (S,) first row of each part
        self.shape = torch.Size([int(sizes.sum()), dims.pop()])

    @property
    def ndim(self) -> int:
        return 2

    @property
    def storage_dtype(self) -> torch.dtype:
        return self.parts[0].dtype

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, index) -> torch.Tensor:
        if isinstance(index, slice):
            index = torch.arange(len(self))[index]
        index = torch.as_tensor(index, dtype=torch.long)
        flat = index.reshape(-1)
        if flat.numel() and (int(flat.min()) < -len(self) or int(flat.max()) >= len(self)):
            raise IndexError(f"row index out of range for {len(self)} rows")
        flat = torch.where(flat < 0, flat + len(self), flat)
        out = torch.empty(flat.numel(), self.shape[1], dtype=torch.float32)  # (B, D)
        part = torch.searchsorted(self.starts, flat, right=True) - 1  # (B,) part of each row
        for p in part.unique().tolist():
            where = (part == p).nonzero()[:, 0]
            out[where] = self.parts[p][flat[where] - self.starts[p]].to(torch.float32)
            # the kernel maps whole large folios (up to 2 MB) around each row read, so rows
            # read at random would keep the whole store resident: give the shard's pages
            # back now (the page cache keeps them, reading them again is a minor fault)
            _release(self.mappings[p])
        return out.reshape(*index.shape, self.shape[1])

    def chunks(self, size: int = 4096) -> Iterator[tuple[int, torch.Tensor]]:
        """`(start, rows (n, D) float32)` in order, at most `size` rows at a time."""
        for p, part in enumerate(self.parts):
            first = int(self.starts[p])
            for at in range(0, int(part.shape[0]), size):
                yield first + at, part[at : at + size].to(torch.float32)
            _release(self.mappings[p])

    def to(self, *args, **kwargs) -> torch.Tensor:
        """The whole table as one tensor (`torch.Tensor.to` arguments), in memory."""
        return self[:].to(*args, **kwargs)
