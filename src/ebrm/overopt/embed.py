"""Embeddings and rewards of any conversations, through a feature store.

The harness scores texts that are not preference pairs (a prompt's candidates), so they are
handed to `ebrm.features.extract_features` as consecutive pseudo-pairs: the store keeps one
row per unique formatted text, keyed (and reused, or resumed) by the RM's weights hash, its
tokenisation settings and the texts; a store made from other inputs is rebuilt.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import torch

from ebrm.data.types import Conversation, PreferencePair
from ebrm.errors import IncompatibleArtifactError
from ebrm.features import build_plan, extract_features
from ebrm.features.plan import EmbeddingModel

logger = logging.getLogger(__name__)


def _pseudo_pairs(conversations: Sequence[Conversation]) -> list[PreferencePair]:
    """Conversations 2i and 2i + 1 as one pair (the last one twice when the count is odd)."""
    convs = list(conversations)
    return [
        PreferencePair(chosen=convs[i], rejected=convs[min(i + 1, len(convs) - 1)], id=str(i))
        for i in range(0, len(convs), 2)
    ]


def conversation_features(
    rm: EmbeddingModel,
    conversations: Sequence[Conversation],
    store: str | Path,
    *,
    batch_size: int = 16,
    progress: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, D) embeddings and (N,) rewards of `conversations` under `rm`, in their order.

    Args:
        rm: the RM (a `BaseRewardModel`).
        conversations: what to score (duplicates are embedded once).
        store: the feature-store directory (created, reused or resumed; rebuilt if it was
            made by another RM or from other texts).
    """
    pairs = _pseudo_pairs(conversations)
    extract = dict(batch_size=batch_size, progress=progress, data_spec="overopt candidates")
    try:
        features = extract_features(rm, pairs, store, **extract)
    except IncompatibleArtifactError as exc:
        logger.info("rebuilding %s (%s)", store, exc)
        features = extract_features(rm, pairs, store, overwrite=True, **extract)
    embeddings, rewards = features.load_rows()
    plan = build_plan(rm, pairs)
    row = {text: i for i, text in enumerate(plan.texts)}
    index = torch.tensor([row[rm.format(c)] for c in conversations], dtype=torch.long)
    return embeddings[index], rewards[index]
