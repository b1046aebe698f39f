"""The on-disk format of the feature store (DESIGN §3 contract) and its reader's errors."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors import safe_open

from ebrm.errors import CorruptArtifactError, IncompatibleArtifactError
from ebrm.features import FeatureStore, extract_features
from ebrm.features.store import shard_ranges, write_shard
from tests.fakes import FakeRM, make_pairs


def test_shard_ranges_cover_rows_once():
    for rows, size in [(0, 3), (1, 3), (9, 3), (10, 3), (5, 100)]:
        ranges = shard_ranges(rows, size)
        covered = [r for start, end in ranges for r in range(start, end)]
        assert covered == list(range(rows))
        assert all(0 < end - start <= size for start, end in ranges)


def test_shard_file_layout(tmp_path):
    emb = torch.randn(3, 4)
    rew = torch.randn(3, dtype=torch.float64)
    record = write_shard(tmp_path, 7, 21, emb, rew, storage_dtype="bfloat16")
    assert record["file"] == "shard-00007.safetensors"
    assert (record["start"], record["end"], record["index"]) == (21, 24, 7)
    with safe_open(tmp_path / record["file"], framework="pt") as handle:
        assert sorted(handle.keys()) == ["embeddings", "rewards"]
        assert handle.metadata()["start"] == "21" and handle.metadata()["end"] == "24"
        assert handle.get_tensor("embeddings").dtype == torch.bfloat16
        assert torch.equal(handle.get_tensor("rewards"), rew.float())  # rewards always fp32
    assert not list(tmp_path.glob(".*"))  # no temporary file left behind


def test_store_directory_layout(tmp_path):
    store = extract_features(FakeRM(), make_pairs(10), tmp_path / "s", shard_size=4, progress=False)
    names = sorted(p.name for p in store.path.iterdir())
    shards = [f"shard-{i:05d}.safetensors" for i in range(store.manifest["num_shards"])]
    assert names == sorted(
        ["manifest.json", "pairs.safetensors", "pairs.json", "rows.safetensors", *shards]
    )
    with safe_open(store.path / "pairs.safetensors", framework="pt") as handle:
        assert handle.get_tensor("chosen").dtype == torch.int64
    text = (store.path / "manifest.json").read_text()
    assert text.endswith("\n") and json.loads(text) == store.manifest
    # the manifest's fields are a contract (DESIGN §3): pin them
    assert sorted(store.manifest) == sorted([
        "format", "format_version", "ebrm_version", "versions", "base_rm", "embedding_dim",
        "storage_dtype", "reward_dtype", "num_rows", "batch_size",
        "num_pairs", "shard_size", "num_shards", "plan_hash", "row_order", "data",
        "pairs_sha256", "shards", "complete",
    ])  # fmt: skip
    assert sorted(store.manifest["shards"][0]) == ["end", "file", "index", "sha256", "start"]


def test_not_a_store(tmp_path):
    with pytest.raises(IncompatibleArtifactError, match="not an ebrm feature store"):
        FeatureStore.open(tmp_path)


def test_manifest_damaged_or_from_newer_version(tmp_path):
    store = extract_features(FakeRM(), make_pairs(4), tmp_path / "s", progress=False)
    manifest = store.path / "manifest.json"
    good = json.loads(manifest.read_text())
    manifest.write_text(json.dumps({**good, "format_version": 99}))
    with pytest.raises(IncompatibleArtifactError, match="format version 99"):
        FeatureStore.open(store.path)
    manifest.write_text(json.dumps({k: v for k, v in good.items() if k != "shards"}))
    with pytest.raises(CorruptArtifactError, match=r"lacks the fields \['shards'\]"):
        FeatureStore.open(store.path)
    manifest.write_text("{ not json")
    with pytest.raises(CorruptArtifactError, match="not valid JSON"):
        FeatureStore.open(store.path)


def test_shard_with_wrong_shape_is_corrupt(tmp_path):
    store = extract_features(FakeRM(), make_pairs(6), tmp_path / "s", progress=False)
    write_shard(store.path, 0, 0, torch.zeros(2, 8), torch.zeros(2), storage_dtype="float32")
    with pytest.raises(CorruptArtifactError, match="shard-00000.safetensors holds embeddings"):
        store.load(verify=False)


def test_pair_table_checksum_is_verified(tmp_path):
    store = extract_features(FakeRM(), make_pairs(6), tmp_path / "s", progress=False)
    (store.path / "pairs.json").write_text('{"ids": [], "subsets": []}\n')
    with pytest.raises(CorruptArtifactError, match="pairs.json fails its sha256"):
        store.load()


def test_row_keys_are_the_sha256_of_each_rows_formatted_text(tmp_path):
    import hashlib

    from ebrm.features import build_plan

    rm, pairs = FakeRM(), make_pairs(10)
    store = extract_features(rm, pairs, tmp_path / "s", shard_size=4, progress=False)
    texts = build_plan(rm, pairs).texts  # the rows, in row order
    keys = store.row_keys()
    assert keys.shape == (store.num_rows, 32) and keys.dtype == torch.uint8
    for row, text in enumerate(texts):
        assert bytes(keys[row].tolist()) == hashlib.sha256(text.encode("utf-8")).digest()
