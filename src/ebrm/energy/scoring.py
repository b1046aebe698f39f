"""Scoring stored features with a trained energy head."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from ebrm._io import atomic_write, atomic_write_text, write_versioned_json
from ebrm._progress import tqdm
from ebrm._provenance import computed_with
from ebrm.errors import IncompatibleArtifactError
from ebrm.features.layout import extraction_setting
from ebrm.features.store import FeatureStore
from ebrm.features.table import PairFeatures

# Rows refined at a time when streaming a store: a multiple of the grid posterior's row
# chunk (64), so that every row is refined in the same company as from one whole table.
STREAM_ROWS = 4096


def _check_dim(model, dim: int) -> None:
    if dim != model.embedding_dim:
        raise IncompatibleArtifactError(
            f"the features have embedding dimension {dim} but the energy head was "
            f"trained on {model.embedding_dim}; use features extracted with the same base RM"
        )


def score_rows(
    model, embeddings: torch.Tensor, rewards: torch.Tensor, *, first_row: int = 0,
    progress: bool = False,
) -> list[dict]:  # fmt: skip
    """One dict per row of (n, D) `embeddings` / (n,) raw `rewards`: `row` (`first_row` +
    i) and the row's record (`RefinedRewards.to_records`)."""
    refined = model.refine(embeddings, rewards, progress=progress)
    return [{"row": first_row + i, **record} for i, record in enumerate(refined.to_records())]


def score_features(model, features: PairFeatures, *, progress: bool = False) -> list[dict]:
    """One dict per feature row: `row` and the row's record (`RefinedRewards.to_records`:
    every reward kind under its name, `refined`, `mean`, ..., `conservative`, `base`, the
    statistics `std`, `spread`, `q05`, `q95`, ..., in normalised units, and the stored
    references' `laplace`, `laplace_std`, `laplace_lcb`, ..., in their own log-odds units).

    Raises:
        IncompatibleArtifactError: the store's embedding width differs from the head's.
    """
    _check_dim(model, features.dim)
    return score_rows(model, features.embeddings, features.rewards, progress=progress)


def _lines(rows: list[dict]) -> str:
    return "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows)


def write_scores(rows: list[dict], path: str | Path) -> Path:
    """Write rows as JSON Lines, atomically."""
    return atomic_write_text(path, _lines(rows))


def score_store(
    model, store: FeatureStore, path: str | Path, *, progress: bool = False,
    verify: bool = True,
) -> int:  # fmt: skip
    """`score_features` of every row of `store`, written to `path` as JSON Lines while
    reading: one shard in memory at a time, `STREAM_ROWS` rows refined at a time, the file
    moved into place only when complete (atomic). The lines are `score_features`'s.

    Returns:
        The number of rows written.

    Raises:
        IncompatibleArtifactError: the store is incomplete, or of another embedding width.
        CorruptArtifactError: a shard is missing, damaged or of the wrong shape.
    """
    _check_dim(model, store.dim)
    store._require_complete()  # before creating the output: names the fix
    bar = tqdm(total=store.num_rows, desc="score", disable=not progress, unit="row")
    written = 0

    def write(tmp: Path) -> None:
        nonlocal written
        with open(tmp, "w", encoding="utf-8") as handle:
            for start, emb, rew in store.iter_shards(verify=verify):
                for at in range(0, len(rew), STREAM_ROWS):
                    part = slice(at, at + STREAM_ROWS)
                    rows = score_rows(model, emb[part], rew[part], first_row=start + at)
                    handle.write(_lines(rows))
                    written += len(rows)
                    bar.update(len(rows))

    try:
        atomic_write(path, write)
    finally:
        bar.close()
    write_scores_meta(path, store, rows=written)
    return written


# The side file of a scores file: what every row was computed with, once, not on each line.
SCORES_META_FORMAT = "ebrm-scores-meta"
SCORES_META_VERSION = 1


def scores_meta_path(path: str | Path) -> Path:
    """`<path>.meta.json`: the side file `score_store` writes beside the scores file."""
    return Path(f"{path}.meta.json")


def write_scores_meta(path: str | Path, store: FeatureStore, *, rows: int) -> Path:
    """Write `scores_meta_path(path)`: the rows' base RM and the settings their embeddings
    and base rewards were computed with (`ebrm._provenance.computed_with`)."""
    settings = store.provenance
    for key in ("max_length", "truncation_side"):  # top level in stores before format 4
        settings[key] = extraction_setting(store.manifest, key)
    meta = {
        "format": SCORES_META_FORMAT,
        "format_version": SCORES_META_VERSION,
        "scores": Path(path).name,
        "rows": rows,
        "features": str(store.path),
        "base_rm": store.provenance.get("name_or_path"),
        "computed_with": computed_with(settings, batch_size=store.manifest.get("batch_size")),
    }
    return write_versioned_json(scores_meta_path(path), meta)
