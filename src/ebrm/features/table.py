"""In-memory features of a preference data set: what the energy head trains on."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ebrm.data.split import split_indices
from ebrm.errors import DataFormatError
from ebrm.features.mapped import MappedRows


@dataclass(frozen=True)
class PairFeatures:
    """Embeddings and base rewards of unique responses, plus which rows form each pair.

    Identical responses are stored once, so a pair refers to rows by index. `prompt_hashes`
    (`ebrm.data.prompt_hash` of each pair) say which pairs share a prompt; stores written
    before they were recorded load with None, and splits then treat every pair as its own
    prompt.

    `embeddings` is a float32 tensor, or a store's `MappedRows` (memory-mapped, read as
    float32 by index: `FeatureStore.load(memory_map=True)`); `subset` and `split` share it,
    `compact` reads the rows it keeps into a tensor.
    """

    embeddings: torch.Tensor | MappedRows  # (N, D) float32, one row per unique response
    rewards: torch.Tensor  # (N,) float32, the base RM's raw reward of that row
    chosen: torch.Tensor  # (P,) int64, row of each pair's chosen response
    rejected: torch.Tensor  # (P,) int64, row of each pair's rejected response
    prompt_hashes: tuple[str, ...] | None = None  # (P,) per pair, or None when unknown

    def __post_init__(self) -> None:
        n = self.embeddings.shape[0]
        if self.embeddings.ndim != 2:
            raise DataFormatError(
                "embeddings must be a 2-D (rows, dim) tensor; "
                f"got shape {tuple(self.embeddings.shape)}"
            )
        if self.rewards.shape != (n,):
            raise DataFormatError(
                f"rewards must have shape ({n},) to match the embeddings; "
                f"got {tuple(self.rewards.shape)}"
            )
        if self.chosen.shape != self.rejected.shape or self.chosen.ndim != 1:
            raise DataFormatError("chosen and rejected must be 1-D index tensors of equal length")
        if len(self.chosen) and (
            int(torch.cat([self.chosen, self.rejected]).max()) >= n
            or int(torch.cat([self.chosen, self.rejected]).min()) < 0
        ):
            raise DataFormatError(
                f"pair indices must lie in [0, {n}); the feature table is inconsistent"
            )
        if self.prompt_hashes is not None:
            object.__setattr__(self, "prompt_hashes", tuple(self.prompt_hashes))
            if len(self.prompt_hashes) != self.num_pairs:
                raise DataFormatError(
                    f"prompt_hashes must have one entry per pair ({self.num_pairs}); "
                    f"got {len(self.prompt_hashes)}"
                )

    @property
    def num_pairs(self) -> int:
        return int(self.chosen.shape[0])

    @property
    def dim(self) -> int:
        return int(self.embeddings.shape[1])

    def subset(self, pair_index: torch.Tensor) -> PairFeatures:
        """The pairs at `pair_index` (rows are shared, not copied)."""
        pair_index = torch.as_tensor(pair_index, dtype=torch.long).reshape(-1)
        hashes = self.prompt_hashes
        if hashes is not None:
            hashes = tuple(hashes[i] for i in pair_index.tolist())
        return PairFeatures(
            self.embeddings,
            self.rewards,
            self.chosen[pair_index],
            self.rejected[pair_index],
            hashes,
        )

    def compact(self) -> PairFeatures:
        """The same pairs with only the rows they use (refining them then costs only those),
        read into a float32 tensor."""
        rows, inverse = torch.unique(torch.cat([self.chosen, self.rejected]), return_inverse=True)
        n = self.num_pairs
        return PairFeatures(
            self.embeddings[rows], self.rewards[rows], inverse[:n], inverse[n:], self.prompt_hashes
        )

    def prompt_groups(self) -> list[list[int]]:
        """Pair indices grouped by prompt, groups in order of first appearance.

        Without prompt hashes every pair is its own group.
        """
        if self.prompt_hashes is None:
            return [[i] for i in range(self.num_pairs)]
        groups: dict[str, list[int]] = {}
        for index, key in enumerate(self.prompt_hashes):
            groups.setdefault(key, []).append(index)
        return list(groups.values())

    def split(self, *, validation_fraction: float, seed: int) -> tuple[PairFeatures, PairFeatures]:
        """A seeded split of the pairs into (train, validation), grouped by prompt.

        `ebrm.data.split_indices` with groups ordered by `torch.randperm` seeded with `seed`
        (the order of earlier versions): validation takes whole groups until it holds
        at least ``round(validation_fraction * P)`` pairs, so no prompt is on both sides.
        Both sides keep the shuffled order. Without prompt hashes (every pair its own group)
        this is the plain random split by pair of earlier versions, pair for pair.
        """
        if not 0.0 <= validation_fraction < 1.0:
            raise ValueError(f"validation_fraction must be in [0, 1); got {validation_fraction}")
        keys = self.prompt_hashes or range(self.num_pairs)
        generator = torch.Generator().manual_seed(seed)
        permutation = lambda n: torch.randperm(n, generator=generator).tolist()  # noqa: E731
        val, train = split_indices(keys, [validation_fraction], seed=permutation)
        as_index = lambda idx: torch.tensor(idx, dtype=torch.long)  # noqa: E731
        return self.subset(as_index(train)), self.subset(as_index(val))
