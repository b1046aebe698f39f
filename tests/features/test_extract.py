"""Extraction into a feature store, with a fake RM (fast): dedup, resume, refusal, dtypes."""

from __future__ import annotations

import hashlib
import json

import pytest
import torch

from ebrm.errors import ConfigError, CorruptArtifactError, IncompatibleArtifactError
from ebrm.features import FeatureStore, extract_features, load_features
from ebrm.features import store as store_format
from tests.fakes import FakeRM, fake_embedding, make_pairs

PAIRS = make_pairs(23)


def _extract(tmp_path, rm=None, pairs=PAIRS, **kwargs):
    options = {"batch_size": 1, "shard_size": 8, "progress": False, **kwargs}
    return extract_features(rm or FakeRM(), pairs, tmp_path / "store", **options)


def _equal(a, b) -> bool:
    return all(
        torch.equal(getattr(a, name), getattr(b, name))
        for name in ("embeddings", "rewards", "chosen", "rejected")
    )


def test_rows_are_unique_texts_embedded_once(tmp_path):
    rm = FakeRM()
    features = _extract(tmp_path, rm).load()
    texts = {rm.format(c) for p in PAIRS for c in (p.chosen, p.rejected)}
    assert len(texts) < 2 * len(PAIRS)  # the data does repeat texts
    assert features.embeddings.shape == (len(texts), rm.hidden_size)
    embedded = [t for call in rm.calls for t in call]
    assert sorted(embedded) == sorted(texts)  # every unique text exactly once
    for i, pair in enumerate(PAIRS):
        for conv, rows in ((pair.chosen, features.chosen), (pair.rejected, features.rejected)):
            expected = fake_embedding(rm.format(conv), rm.hidden_size)
            assert torch.equal(features.embeddings[rows[i]], expected)
            assert torch.equal(features.rewards[rows[i]], expected.sum())


def test_rows_are_ordered_longest_first(tmp_path):
    rm = FakeRM()
    _extract(tmp_path, rm)
    lengths = [len(t) for call in rm.calls for t in call]
    assert lengths == sorted(lengths, reverse=True)


def test_manifest_records_provenance_shards_and_checksums(tmp_path):
    rm = FakeRM()
    store = _extract(tmp_path, rm, data_spec="my/data.jsonl")
    m = store.manifest
    assert m["format"] == "ebrm-feature-store"
    assert m["format_version"] == store_format.FORMAT_VERSION
    assert m["base_rm"] == rm.provenance() and store.provenance == rm.provenance()
    assert m["complete"] is True
    # written once (format version 4), in the provenance
    assert (m["base_rm"]["max_length"], m["base_rm"]["truncation_side"]) == (64, "left")
    assert "max_length" not in m and "truncation_side" not in m
    assert m["batch_size"] == 1  # the forward batch size (format version 5)
    assert (m["embedding_dim"], m["storage_dtype"], m["num_pairs"]) == (8, "float32", 23)
    assert m["data"]["spec"] == "my/data.jsonl"
    ends = [0] + [s["end"] for s in m["shards"]]
    assert [s["start"] for s in m["shards"]] == ends[:-1]  # contiguous, in order
    assert ends[-1] == m["num_rows"]
    for record in m["shards"]:
        assert record["end"] - record["start"] <= 8
        data = (store.path / record["file"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == record["sha256"]
        assert record["file"] == f"shard-{record['index']:05d}.safetensors"
    ids, subsets = store.pair_info()
    assert ids == [p.id for p in PAIRS] and subsets == [p.subset for p in PAIRS]


@pytest.mark.parametrize("dtype", ["bfloat16", "fp16", "float32"])
def test_storage_dtype_rounds_embeddings_but_not_rewards(tmp_path, dtype):
    reference = _extract(tmp_path / "ref").load()
    features = load_features(_extract(tmp_path, storage_dtype=dtype).path)
    torch_dtype = {"bfloat16": torch.bfloat16, "fp16": torch.float16, "float32": torch.float32}
    expected = reference.embeddings.to(torch_dtype[dtype]).float()
    assert features.embeddings.dtype == torch.float32
    assert torch.equal(features.embeddings, expected)
    assert torch.equal(features.rewards, reference.rewards)


def test_resume_after_crash_embeds_each_row_once_and_equals_uninterrupted(tmp_path):
    reference = _extract(tmp_path / "ref").load()
    crashed = FakeRM(fail_after=2)
    with pytest.raises(RuntimeError, match="simulated crash"):
        _extract(tmp_path, crashed)
    store = FeatureStore.open(tmp_path / "store")
    assert not store.complete and len(store.manifest["shards"]) == 2
    with pytest.raises(IncompatibleArtifactError, match="incomplete .16 of"):
        store.load()
    resumed = FakeRM()
    features = _extract(tmp_path, resumed).load()
    first = [t for call in crashed.calls for t in call]
    second = [t for call in resumed.calls for t in call]
    assert len(first) == 16 and not set(first) & set(second)
    assert len(first) + len(second) == reference.embeddings.shape[0]
    assert _equal(features, reference)


def test_unrecorded_trailing_shard_and_temp_files_are_redone(tmp_path):
    reference = _extract(tmp_path / "ref").load()
    with pytest.raises(RuntimeError):
        _extract(tmp_path, FakeRM(fail_after=1))
    out = tmp_path / "store"
    # killed after the rename but before the manifest update, and mid-write of another file
    (out / "shard-00001.safetensors").write_bytes(b"half a shard")
    (out / ".shard-00002.safetensors.abc123.tmp").write_bytes(b"partial")
    resumed = FakeRM()
    features = _extract(tmp_path, resumed).load()
    assert _equal(features, reference)
    assert not list(out.glob(".*.tmp"))
    assert sum(len(call) for call in resumed.calls) == reference.embeddings.shape[0] - 8


def test_corrupt_shard_is_detected_then_redone_by_rerun(tmp_path):
    store = _extract(tmp_path)
    reference = store.load()
    shard = store.path / "shard-00001.safetensors"
    data = bytearray(shard.read_bytes())
    data[-3] ^= 0xFF  # inside the tensor data: still loadable, but wrong
    shard.write_bytes(bytes(data))
    with pytest.raises(CorruptArtifactError, match=r"shard-00001\.safetensors fails its sha256"):
        load_features(store.path)
    assert not _equal(store.load(verify=False), reference)  # the fast path trusts the bytes
    rm = FakeRM()
    again = _extract(tmp_path, rm)
    assert [len(call) for call in rm.calls] == [8]  # only the corrupt shard
    assert _equal(again.load(), reference)


def test_missing_shard_is_named(tmp_path):
    store = _extract(tmp_path)
    (store.path / "shard-00002.safetensors").unlink()
    with pytest.raises(CorruptArtifactError, match=r"shard-00002.safetensors is listed"):
        store.load()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"rm": FakeRM(weights_hash="other")}, r"weights_hash.*'w0'.*'other'"),
        ({"rm": FakeRM(max_length=32)}, r"max_length: store has 64, this run has 32"),
        ({"storage_dtype": "bfloat16"}, r"storage dtype: store has 'float32'"),
        ({"shard_size": 4}, r"shard size"),
        ({"pairs": PAIRS[:-1]}, r"data \(plan hash"),
    ],
)
def test_store_from_other_rm_settings_or_data_is_refused(tmp_path, change, message):
    _extract(tmp_path)
    with pytest.raises(IncompatibleArtifactError, match=message) as info:
        _extract(tmp_path, **change)
    assert "--overwrite" in str(info.value)
    fresh = _extract(tmp_path / "fresh", **change).load()
    assert _equal(_extract(tmp_path, overwrite=True, **change).load(), fresh)


def test_directory_that_is_not_a_store_is_refused(tmp_path):
    out = tmp_path / "store"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(IncompatibleArtifactError, match="not a feature store.*notes.txt"):
        _extract(tmp_path)
    with pytest.raises(IncompatibleArtifactError, match="refuses to empty"):
        _extract(tmp_path, overwrite=True)
    assert (out / "notes.txt").read_text() == "mine"


def test_complete_store_rerun_does_no_work(tmp_path):
    first = _extract(tmp_path).manifest
    rm = FakeRM()
    again = _extract(tmp_path, rm)
    assert rm.calls == [] and again.manifest["shards"] == first["shards"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"batch_size": 0}, "batch_size must be an int >= 1; got 0"),
        ({"shard_size": 0}, "shard_size must be an int >= 1; got 0"),
        ({"storage_dtype": "int8"}, "Unknown storage dtype 'int8'"),
        ({"pairs": []}, "No preference pairs"),
    ],
)
def test_bad_options_raise_config_error(tmp_path, kwargs, message):
    with pytest.raises(ConfigError, match=message):
        _extract(tmp_path, **kwargs)


def test_manifest_is_small_json(tmp_path):
    store = _extract(tmp_path, pairs=make_pairs(200))
    text = (store.path / "manifest.json").read_text()
    assert json.loads(text)["num_pairs"] == 200 and len(text) < 20_000


def test_progress_of_killed_multi_process_run_is_merged_on_rerun(tmp_path):
    reference = _extract(tmp_path / "ref").load()
    store = _extract(tmp_path)
    manifest = store.manifest
    shards = manifest["shards"]
    # as if ranks 0 and 1 of a killed 2-process run had finished shards 0 and 1 respectively:
    # rank 0's is in the manifest, rank 1's only in its progress file
    progress = {"plan_hash": manifest["plan_hash"], "rank": 1, "shards": [shards[1]]}
    (store.path / "progress-rank-00001.json").write_text(json.dumps(progress))
    stale = {"plan_hash": "other data", "rank": 2, "shards": [shards[2]]}
    (store.path / "progress-rank-00002.json").write_text(json.dumps(stale))
    for record in shards[2:]:
        (store.path / record["file"]).unlink()
    partial = {**manifest, "shards": shards[:1], "complete": False}
    (store.path / "manifest.json").write_text(json.dumps(partial))
    rm = FakeRM()
    again = _extract(tmp_path, rm)
    assert sum(len(call) for call in rm.calls) == again.num_rows - 16  # shards 0 and 1 kept
    assert not list(again.path.glob("progress-rank-*"))
    assert _equal(again.load(), reference)


def test_two_ranks_write_the_single_process_store(tmp_path, monkeypatch):
    """Two ranks (threads with accelerate's process-state seam), each embedding only its
    own shards, write the store one process writes: same rows, order, keys and checksums."""
    import threading

    from ebrm.features import extract as extract_module

    single = _extract(tmp_path / "one")
    barrier = threading.Barrier(2)
    local = threading.local()

    class State:
        num_processes = 2

        def __init__(self, rank):
            self.process_index = rank
            self.is_main_process = rank == 0

        def wait_for_everyone(self):
            barrier.wait(timeout=60)

    monkeypatch.setattr(extract_module, "process_state", lambda: State(local.rank))
    rms, errors = [FakeRM(), FakeRM()], []

    def rank(r):
        local.rank = r
        try:
            _extract(tmp_path / "two", rms[r])
        except BaseException as exc:  # reported below; a hung barrier would hide it
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=rank, args=(r,)) for r in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    two = FeatureStore.open(tmp_path / "two" / "store")
    # each rank embedded only its own shards' texts, and together every row once
    texts = [[t for call in rm.calls for t in call] for rm in rms]
    assert texts[0] and texts[1] and not set(texts[0]) & set(texts[1])
    assert len(texts[0]) + len(texts[1]) == single.num_rows
    for key in ("plan_hash", "num_rows", "num_pairs", "complete", "files"):
        assert two.manifest.get(key) == single.manifest.get(key), key
    strip = [{k: v for k, v in s.items() if k != "sha256"} for s in single.manifest["shards"]]
    assert [{k: v for k, v in s.items() if k != "sha256"} for s in two.manifest["shards"]] == strip
    # shard files hold the same tensors and metadata (safetensors orders metadata keys
    # arbitrarily, so their bytes and checksums may differ even between two single runs)
    for record in single.manifest["shards"]:
        a, b = (_shard(store.path / record["file"]) for store in (single, two))
        assert a[1] == b[1] and a[0].keys() == b[0].keys()
        assert all(torch.equal(a[0][k], b[0][k]) for k in a[0])
    assert _equal(two.load(), single.load())


def _shard(path):
    from safetensors import safe_open

    with safe_open(path, "pt") as f:
        names = list(f.keys())
        return {k: f.get_tensor(k) for k in names}, f.metadata()


def test_tokenisation_settings_are_read_from_either_manifest_layout():
    """Format 4 writes max_length/truncation_side once, in base_rm; a version <= 3 manifest
    also has them at the top level, and one whose provenance lacked them only there."""
    from ebrm.features.layout import extraction_setting

    v4 = {"base_rm": {"max_length": 64, "truncation_side": "left"}}
    v3 = {**v4, "max_length": 64, "truncation_side": "left"}
    v3_bare = {"base_rm": {"name_or_path": "x"}, "max_length": 128, "truncation_side": "right"}
    for manifest, expected in ((v4, (64, "left")), (v3, (64, "left")), (v3_bare, (128, "right"))):
        got = (extraction_setting(manifest, "max_length"),
               extraction_setting(manifest, "truncation_side"))  # fmt: skip
        assert got == expected
    assert extraction_setting({"base_rm": {}}, "max_length") is None


def test_a_version_3_store_with_the_settings_twice_is_continued_and_rewritten_once(tmp_path):
    first = _extract(tmp_path).manifest
    path = tmp_path / "store" / "manifest.json"
    old = {**first, "format_version": 3, "max_length": 64, "truncation_side": "left"}
    path.write_text(json.dumps(old), encoding="utf-8")
    rm = FakeRM()
    again = _extract(tmp_path, rm).manifest
    assert rm.calls == [] and again["shards"] == first["shards"]  # nothing re-embedded
    assert again["format_version"] == store_format.FORMAT_VERSION == 5
    assert "max_length" not in again and again["base_rm"]["max_length"] == 64
    with pytest.raises(
        IncompatibleArtifactError, match="max_length: store has 64, this run has 32"
    ):
        path.write_text(json.dumps(old), encoding="utf-8")
        _extract(tmp_path, FakeRM(max_length=32))
