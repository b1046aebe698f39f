"""Scoring stored features with a trained energy head."""

from __future__ import annotations

import json
from pathlib import Path

from ebrm._io import atomic_write_text
from ebrm.errors import IncompatibleArtifactError
from ebrm.features.table import PairFeatures

SCORE_FIELDS = ("base", "refined", "mean", "std", "spread", "q05", "q95", "conservative")


def score_features(model, features: PairFeatures, *, progress: bool = False) -> list[dict]:
    """One dict per feature row: `row` and SCORE_FIELDS, in normalised units, plus the
    stored references' columns ("laplace", "laplace_std", "laplace_conservative",
    "ensemble", ...; in their own log-odds units) when the model has them.

    Raises:
        IncompatibleArtifactError: the store's embedding width differs from the head's.
    """
    if features.dim != model.embedding_dim:
        raise IncompatibleArtifactError(
            f"the features have embedding dimension {features.dim} but the energy head was "
            f"trained on {model.embedding_dim}; use features extracted with the same base RM"
        )
    refined = model.refine(features.embeddings, features.rewards, progress=progress)
    columns = {
        "base": refined.base,
        "refined": refined.reward,
        "mean": refined.mean,
        "std": refined.std,
        "spread": refined.spread,
        "q05": refined.q05,
        "q95": refined.q95,
        "conservative": refined.conservative,
        **refined.references,
    }
    values = {k: v.tolist() for k, v in columns.items()}
    return [{"row": i, **{k: col[i] for k, col in values.items()}} for i in range(len(refined))]


def write_scores(rows: list[dict], path: str | Path) -> Path:
    """Write rows as JSON Lines, atomically."""
    return atomic_write_text(path, "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))
