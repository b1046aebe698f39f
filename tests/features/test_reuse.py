"""Reusing a store's rows: found by text key, only from the same RM and settings, and a
store extracted with reuse is the store a fresh extraction writes."""

from __future__ import annotations

import json

import pytest
import torch

from ebrm.errors import IncompatibleArtifactError
from ebrm.features import build_plan, extract_features
from ebrm.features.reuse import ReusingRM, StoredRows
from ebrm.features.store import MANIFEST, FeatureStore
from tests.fakes import FakeRM, fake_embedding, make_pairs


def _embedded(rm: FakeRM) -> list[str]:
    return [text for call in rm.calls for text in call]


def test_extract_with_reuse_embeds_only_new_texts_and_writes_the_same_store(tmp_path):
    pairs = make_pairs(30, duplicates=False)
    old = extract_features(FakeRM(), pairs[:20], tmp_path / "old", shard_size=7, progress=False)
    rm = FakeRM()
    reused = extract_features(
        rm, pairs[10:], tmp_path / "new", shard_size=5, progress=False,
        reuse=StoredRows(old),
    )  # fmt: skip
    fresh = extract_features(FakeRM(), pairs[10:], tmp_path / "fresh", shard_size=5, progress=False)
    # only the texts of pairs 20..29 were embedded, each once
    old_texts = set(build_plan(rm, pairs[:20]).texts)
    new_texts = [t for t in build_plan(rm, pairs[10:]).texts if t not in old_texts]
    assert sorted(_embedded(rm)) == sorted(new_texts) and len(new_texts) == 20
    a, b = reused.load(), fresh.load()
    for name in ("embeddings", "rewards", "chosen", "rejected"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name
    assert a.prompt_hashes == b.prompt_hashes
    assert torch.equal(reused.row_keys(), fresh.row_keys())
    assert reused.provenance == fresh.provenance == rm.provenance()


def test_stored_rows_read_what_they_hold_and_embed_each_missing_text_once(tmp_path):
    rm = FakeRM()
    store = extract_features(rm, make_pairs(6), tmp_path / "s", shard_size=3, progress=False)
    stored = StoredRows(store)
    held = build_plan(rm, make_pairs(6)).texts
    texts = [held[4], "new text", held[0], "new text", "other", held[4]]
    counting = FakeRM()
    emb, rew = stored.embed(counting, texts)
    assert counting.calls == [["new text", "other"]]  # unique, in first-seen order
    expected = torch.stack([fake_embedding(t, 8) for t in texts])
    assert torch.allclose(emb, expected) and torch.allclose(rew, expected.sum(1))
    assert (stored.reused, stored.embedded) == (3, 2)
    assert held[1] in stored and "other" not in stored and len(stored) == store.num_rows


def test_reusing_rm_formats_with_the_wrapped_rm_and_reads_stored_rows(tmp_path):
    pairs = make_pairs(8)
    store = extract_features(FakeRM(), pairs, tmp_path / "s", progress=False)
    rm = FakeRM()
    reusing = ReusingRM(rm, StoredRows(store))
    convs = [pairs[0].chosen, pairs[3].rejected]
    emb, _ = reusing.embed_conversations(convs)
    assert rm.calls == []
    expected = torch.stack([fake_embedding(rm.format(c), 8) for c in convs])
    assert torch.allclose(emb, expected)
    assert reusing.weights_hash == rm.weights_hash and reusing.hidden_size == 8


@pytest.mark.parametrize(
    ("other", "named"),
    [
        (FakeRM(weights_hash="w1"), "weights hash 'w0' vs 'w1'"),
        (FakeRM(max_length=32), "max length 64 vs 32"),
        (FakeRM(dim=4), "embedding size 8 vs 4"),
    ],
)
def test_rows_of_another_rm_or_setting_are_refused_naming_both_values(tmp_path, other, named):
    store = extract_features(FakeRM(), make_pairs(4), tmp_path / "s", progress=False)
    with pytest.raises(IncompatibleArtifactError, match=named):
        ReusingRM(other, StoredRows(store))
    with pytest.raises(IncompatibleArtifactError, match=named):
        extract_features(other, make_pairs(4), tmp_path / "t", reuse=StoredRows(store))
    assert not (tmp_path / "t").exists()


def test_truncation_side_is_part_of_the_key(tmp_path):
    store = extract_features(FakeRM(), make_pairs(4), tmp_path / "s", progress=False)
    right = FakeRM()
    right.truncation_side = "right"
    with pytest.raises(IncompatibleArtifactError, match="truncation side 'left' vs 'right'"):
        ReusingRM(right, StoredRows(store))


def test_a_store_without_text_keys_says_how_to_add_them(tmp_path):
    store = extract_features(FakeRM(), make_pairs(4), tmp_path / "s", progress=False)
    manifest = json.loads((store.path / MANIFEST).read_text())
    del manifest["pairs_sha256"]["rows.safetensors"]
    manifest["format_version"] = 2
    (store.path / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(IncompatibleArtifactError, match="re-run the same `ebrm extract`"):
        StoredRows(FeatureStore.open(store.path))
