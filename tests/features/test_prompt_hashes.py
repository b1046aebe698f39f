"""Per-pair prompt hashes in the feature store (format version 2) and version 1 stores."""

from __future__ import annotations

import hashlib
import json
import logging

import torch

from ebrm.data import Conversation, PreferencePair, prompt_hash
from ebrm.features import FeatureStore, extract_features
from ebrm.features import store as fs
from tests.fakes import FakeRM, make_pairs

PAIRS = make_pairs(23)  # 5 prompts: pair i asks "question {i % 5}"


def _extract(tmp_path, rm=None):
    return extract_features(
        rm or FakeRM(), PAIRS, tmp_path / "store", batch_size=4, shard_size=8, progress=False
    )


def _downgrade_to_version_1(path) -> None:
    """Rewrite a store as version 1 wrote it: no prompt_hashes in pairs.json."""
    meta_file = path / fs.PAIRS_META
    meta = json.loads(meta_file.read_text())
    del meta["prompt_hashes"]
    data = (json.dumps(meta, ensure_ascii=False) + "\n").encode()
    meta_file.write_bytes(data)
    manifest = json.loads((path / fs.MANIFEST).read_text())
    manifest["format_version"] = 1
    manifest["pairs_sha256"][fs.PAIRS_META] = hashlib.sha256(data).hexdigest()
    (path / fs.MANIFEST).write_text(json.dumps(manifest))


def test_prompt_hash_is_the_short_sha256_of_the_chosen_turns():
    pair = PreferencePair(
        Conversation((("system", "be kind"), ("user", "héllo")), "a"),
        Conversation((("system", "be kind"), ("user", "héllo")), "b"),
    )
    text = '[["system","be kind"],["user","héllo"]]'
    assert prompt_hash(pair) == hashlib.sha256(text.encode()).hexdigest()[:16]
    other = PreferencePair(Conversation.from_prompt("héllo", "a"), pair.rejected)
    assert prompt_hash(other) != prompt_hash(pair)  # the system turn is part of the prompt


def test_store_records_one_prompt_hash_per_pair(tmp_path):
    store = _extract(tmp_path)
    assert store.manifest["format_version"] == fs.FORMAT_VERSION >= 3
    hashes = store.prompt_hashes()
    assert hashes == [prompt_hash(p) for p in PAIRS]
    assert len(set(hashes)) == 5
    features = store.load()
    assert features.prompt_hashes == tuple(hashes)
    # pairs share a hash exactly when they share a prompt
    for i in range(len(PAIRS)):
        for j in range(len(PAIRS)):
            same = PAIRS[i].chosen.messages == PAIRS[j].chosen.messages
            assert (hashes[i] == hashes[j]) == same


def test_a_version_1_store_loads_without_prompt_hashes_and_warns_once(tmp_path, caplog):
    store = _extract(tmp_path)
    expected = store.load()
    _downgrade_to_version_1(store.path)
    old = FeatureStore.open(store.path)
    assert old.manifest["format_version"] == 1 and old.prompt_hashes() is None
    with caplog.at_level(logging.WARNING, logger="ebrm.features.store"):
        features = old.load()
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and "no prompt hashes" in warnings[0]
    assert features.prompt_hashes is None
    for name in ("embeddings", "rewards", "chosen", "rejected"):
        assert torch.equal(getattr(features, name), getattr(expected, name))
    # without prompts every pair is its own group
    assert features.prompt_groups() == [[i] for i in range(len(PAIRS))]
    assert old.pair_info() == ([p.id for p in PAIRS], [p.subset for p in PAIRS])


def test_rerunning_extract_upgrades_a_version_1_store_without_embedding_again(tmp_path):
    store = _extract(tmp_path)
    _downgrade_to_version_1(store.path)
    rm = FakeRM()
    upgraded = _extract(tmp_path, rm)
    assert rm.calls == []  # every shard was kept
    assert upgraded.manifest["format_version"] == fs.FORMAT_VERSION
    assert upgraded.prompt_hashes() == [prompt_hash(p) for p in PAIRS]
