"""In-memory features of a preference data set: what the energy head trains on."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ebrm.errors import DataFormatError


@dataclass(frozen=True)
class PairFeatures:
    """Embeddings and base rewards of unique responses, plus which rows form each pair.

    Identical responses are stored once, so a pair refers to rows by index.
    """

    embeddings: torch.Tensor  # (N, D) float32, one row per unique response
    rewards: torch.Tensor  # (N,) float32, the base RM's raw reward of that row
    chosen: torch.Tensor  # (P,) int64, row of each pair's chosen response
    rejected: torch.Tensor  # (P,) int64, row of each pair's rejected response

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

    @property
    def num_pairs(self) -> int:
        return int(self.chosen.shape[0])

    @property
    def dim(self) -> int:
        return int(self.embeddings.shape[1])

    def subset(self, pair_index: torch.Tensor) -> PairFeatures:
        """The pairs at `pair_index` (rows are shared, not copied)."""
        return PairFeatures(
            self.embeddings, self.rewards, self.chosen[pair_index], self.rejected[pair_index]
        )

    def split(self, *, validation_fraction: float, seed: int) -> tuple[PairFeatures, PairFeatures]:
        """A seeded random split of the pairs into (train, validation)."""
        if not 0.0 <= validation_fraction < 1.0:
            raise ValueError(f"validation_fraction must be in [0, 1); got {validation_fraction}")
        generator = torch.Generator().manual_seed(seed)
        order = torch.randperm(self.num_pairs, generator=generator)
        n_val = int(round(self.num_pairs * validation_fraction))
        return self.subset(order[n_val:]), self.subset(order[:n_val])
