"""What evaluation needs from a model: the interfaces `EnergyRewardModel` satisfies.

Tests use small fakes with the same methods; nothing here inspects signatures or
attributes at run time.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import torch

from ebrm.data.types import Conversation
from ebrm.references import ReferenceSet
from ebrm.refine.config import RefineConfig
from ebrm.refine.results import RefinedRewards


@runtime_checkable
class EmbeddingRM(Protocol):
    """A base RM that returns (N, D) embeddings and (N,) raw rewards of conversations."""

    def embed_conversations(
        self, convs: Sequence[Conversation], *, batch_size: int = 16, progress: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor]: ...


@runtime_checkable
class RefiningModel(Protocol):
    """A refined reward model: refines stored embeddings and compares two responses."""

    base_rm_info: dict[str, Any]  # provenance of the base RM ("name_or_path", ...)
    refine_config: RefineConfig  # conservative_k, the p_better temperature, ...
    references: ReferenceSet | None  # rewards to judge it against (None: none stored)

    def refine(
        self,
        embeddings: torch.Tensor,
        base_rewards: torch.Tensor,
        *,
        method: str | None = None,
        progress: bool = False,
    ) -> RefinedRewards: ...

    def p_better(self, emb_a: torch.Tensor, emb_b: torch.Tensor) -> torch.Tensor: ...


class TextRefiningModel(RefiningModel, Protocol):
    """A `RefiningModel` that also embeds text with its base RM (loaded on first use)."""

    @property
    def base_rm(self) -> EmbeddingRM: ...
