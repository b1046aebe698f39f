"""A Bradley-Terry base RM trained through its own feature store (`ebrm base-rm train`).

`ebrm.rm.train_bt.train_bradley_terry` needs the embedding of every text of the data once:
with a frozen encoder to fit the score head on, after fine-tuning to report accuracies. Here
those embeddings come from `extract_features` (unique texts, length-sorted batches), and the
store is kept: once the RM is saved, the store's rewards become the fitted head's on the
stored embeddings and its provenance the saved RM's, so it is the store that
`ebrm extract --rm OUT --data SAME` would write, and later commands read its rows instead of
embedding the same texts again.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import torch

from ebrm._io import swap_directory
from ebrm.data.types import PreferencePair
from ebrm.errors import ConfigError
from ebrm.features import layout
from ebrm.features.extract import extract_features
from ebrm.features.store import FeatureStore
from ebrm.rm.adapter import BaseRewardModel
from ebrm.rm.train_bt import BTTrainConfig, BTTrainResult, train_bradley_terry

FEATURES_DIR = "features"  # the store's default place: inside the RM directory


def train_with_store(
    model_path: str | Path,
    pairs: list[PreferencePair],
    out: str | Path,
    *,
    config: BTTrainConfig | None = None,
    data_spec: str | None = None,
    features_out: str | Path | None = None,
    shard_size: int = 4096,
    overwrite: bool = False,
) -> tuple[BTTrainResult, FeatureStore]:
    """`train_bradley_terry`, embedding through a feature store that is kept.

    Args:
        model_path, pairs, out, config, data_spec: as for `train_bradley_terry`.
        features_out: where the store of `pairs` goes (default `out/features`); must not
            exist or be an empty directory, unless `overwrite`.
        shard_size: rows per shard file.
        overwrite: replace a non-empty `out` (and `features_out`); each stays intact until
            its replacement is complete (a store inside `out` arrives with the model).

    Returns:
        (the training result, the store of every pair, labels as given, in input order).

    Raises:
        ConfigError: `features_out` exists and is not empty (unless `overwrite`), or as
            `train_bradley_terry`.
    """
    config = config or BTTrainConfig()
    out = Path(out)
    features_out = Path(features_out) if features_out is not None else out / FEATURES_DIR
    if features_out.exists() and (
        not features_out.is_dir() or (not overwrite and any(features_out.iterdir()))
    ):
        raise ConfigError(
            f"--features-out {features_out} exists and is not empty; choose a new directory."
        )
    # a store inside `out` is put into the staged model directory, so that it replaces the
    # previous one together with the model
    inside = features_out.resolve().is_relative_to(out.resolve())
    if features_out.resolve() == out.resolve():
        raise ConfigError(
            f"--features-out {features_out} is --out itself; give the store a directory of "
            "its own (default OUT/features)."
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}-features.", dir=out.parent))
    used: list[BaseRewardModel] = []

    def embed_pairs(rm: BaseRewardModel, all_pairs: list[PreferencePair]):
        store = extract_features(
            rm, all_pairs, staging, batch_size=config.batch_size, shard_size=shard_size,
            progress=config.progress, data_spec=data_spec, checkpoint_seconds=None,
        )  # fmt: skip
        used.append(rm)
        features = store.load(verify=False)
        return features.embeddings[features.chosen], features.embeddings[features.rejected]

    def publish_store(staged_out: Path) -> None:
        _relabel(staging, used[-1])  # the RM stands for `out` by now (`saved_as`)
        if inside:
            target = staged_out / features_out.resolve().relative_to(out.resolve())
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(staging), str(target))

    try:
        result = train_bradley_terry(
            model_path, pairs, out, config=config, data_spec=data_spec, embed_pairs=embed_pairs,
            overwrite=overwrite, before_publish=publish_store,
        )  # fmt: skip
        if not inside:
            features_out.parent.mkdir(parents=True, exist_ok=True)
            swap_directory(staging, features_out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return result, FeatureStore.open(features_out)


def _relabel(path: Path, rm: BaseRewardModel) -> None:
    """Give the store at `path` the trained RM's rewards (its head on the stored embeddings)
    and provenance, shard by shard, then the manifest."""
    store = FeatureStore.open(path)
    manifest = dict(store.manifest)
    records = []
    for record, (start, emb, _) in zip(
        sorted(manifest["shards"], key=lambda r: r["start"]), store.iter_shards(), strict=True
    ):
        rewards = rm.head_reward(emb).to(torch.float32)  # (n,)
        records.append(
            layout.write_shard(
                path, record["index"], start, emb, rewards, storage_dtype=manifest["storage_dtype"]
            )
        )
    provenance = rm.provenance()
    manifest.update(
        base_rm=provenance,
        max_length=provenance["max_length"],
        truncation_side=provenance["truncation_side"],
        shards=records,
    )
    layout.write_manifest(path, manifest)
