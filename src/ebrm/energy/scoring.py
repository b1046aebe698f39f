"""Scoring stored features with a trained energy head."""

from __future__ import annotations

import json
from pathlib import Path

from ebrm._io import atomic_write_text
from ebrm.errors import IncompatibleArtifactError
from ebrm.features.table import PairFeatures


def score_features(model, features: PairFeatures, *, progress: bool = False) -> list[dict]:
    """One dict per feature row: `row` and the row's record (`RefinedRewards.to_records`:
    every reward kind under its name, `refined`, `mean`, ..., `conservative`, `base`, the
    statistics `std`, `spread`, `q05`, `q95`, ..., in normalised units, and the stored
    references' `laplace`, `laplace_std`, `laplace_lcb`, ..., in their own log-odds units).

    Raises:
        IncompatibleArtifactError: the store's embedding width differs from the head's.
    """
    if features.dim != model.embedding_dim:
        raise IncompatibleArtifactError(
            f"the features have embedding dimension {features.dim} but the energy head was "
            f"trained on {model.embedding_dim}; use features extracted with the same base RM"
        )
    refined = model.refine(features.embeddings, features.rewards, progress=progress)
    return [{"row": i, **record} for i, record in enumerate(refined.to_records())]


def write_scores(rows: list[dict], path: str | Path) -> Path:
    """Write rows as JSON Lines, atomically."""
    return atomic_write_text(path, "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))
