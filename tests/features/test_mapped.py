"""Memory-mapped rows of a feature store: the same float32 values as reading every shard."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file

from ebrm.errors import CorruptArtifactError
from ebrm.features import FeatureStore, extract_features
from ebrm.features.mapped import MappedRows, map_tensor
from ebrm.features.store import STORAGE_DTYPES
from tests.fakes import FakeRM, make_pairs


@pytest.fixture(scope="module", params=["float16", "bfloat16", "float32"])
def store(request, tmp_path_factory):
    out = tmp_path_factory.mktemp(request.param) / "store"
    # shards of 7 rows: indices below cross shard boundaries
    return extract_features(
        FakeRM(dim=6), make_pairs(25), out, shard_size=7, storage_dtype=request.param,
        progress=False,
    )  # fmt: skip


def _reference(store: FeatureStore) -> tuple[torch.Tensor, torch.Tensor]:
    """Every shard read whole with safetensors and widened to float32, stacked."""
    shards = list(store.iter_shards())
    return torch.cat([e for _, e, _ in shards]), torch.cat([r for _, _, r in shards])


def test_mapped_rows_equal_the_shards_read_whole(store):
    rows, rewards = store.mapped_rows()
    emb, rew = _reference(store)
    assert rows.shape == emb.shape and len(rows) == store.num_rows and rows.ndim == 2
    assert rows.storage_dtype == STORAGE_DTYPES[store.manifest["storage_dtype"]]  # not widened
    assert torch.equal(rewards, rew)
    g = torch.Generator().manual_seed(0)
    index = torch.randint(0, store.num_rows, (50,), generator=g)  # repeats, any order
    picked = rows[index]
    assert picked.dtype == torch.float32
    assert torch.equal(picked, torch.stack([emb[i] for i in index.tolist()]))
    assert torch.equal(rows[index.reshape(5, 10)], emb[index.reshape(5, 10)])
    assert torch.equal(rows[2:17], emb[2:17]) and torch.equal(rows[[-1]], emb[[-1]])
    assert rows[torch.zeros(0, dtype=torch.long)].shape == (0, store.dim)
    chunks = list(rows.chunks(size=3))
    assert [s for s, _ in chunks] == sorted({s for s, _ in chunks})  # in order
    assert torch.equal(torch.cat([c for _, c in chunks]), emb)
    assert all(len(c) <= 3 for _, c in chunks)
    with pytest.raises(IndexError, match="out of range"):
        rows[torch.tensor([store.num_rows])]


def test_load_memory_mapped_gives_the_same_features(store):
    mapped, full = store.load(memory_map=True), store.load()
    assert isinstance(mapped.embeddings, MappedRows)
    assert torch.equal(mapped.embeddings[:], full.embeddings)
    assert torch.equal(mapped.rewards, full.rewards)
    assert torch.equal(mapped.chosen, full.chosen) and mapped.prompt_hashes == full.prompt_hashes
    # compaction reads the rows a subset uses into a tensor
    sub = mapped.subset(torch.tensor([3, 1]))
    assert sub.embeddings is mapped.embeddings
    compact, expected = sub.compact(), full.subset(torch.tensor([3, 1])).compact()
    assert isinstance(compact.embeddings, torch.Tensor)
    assert torch.equal(compact.embeddings, expected.embeddings)
    assert torch.equal(compact.chosen, expected.chosen)


def test_map_tensor_is_not_a_copy(tmp_path):
    file = tmp_path / "t.safetensors"
    save_file({"x": torch.arange(12, dtype=torch.float16).reshape(3, 4)}, file)
    mapped = map_tensor(file, "x")
    assert mapped.dtype == torch.float16
    assert torch.equal(mapped, torch.arange(12.0).reshape(3, 4).half())
    with pytest.raises(CorruptArtifactError, match="cannot be read as safetensors"):
        map_tensor(file, "y")
    (tmp_path / "bad.safetensors").write_bytes(b"\x05\x00")
    with pytest.raises(CorruptArtifactError, match="bad.safetensors"):
        map_tensor(tmp_path / "bad.safetensors", "x")


def test_mapped_rows_reject_a_shard_of_the_wrong_shape(tmp_path):
    store = extract_features(FakeRM(dim=4), make_pairs(6), tmp_path / "s", shard_size=4,
                             progress=False)  # fmt: skip
    record = store.manifest["shards"][0]
    save_file({"embeddings": torch.zeros(3, 4), "rewards": torch.zeros(3)},
              store.path / record["file"])  # fmt: skip
    with pytest.raises(CorruptArtifactError, match="manifest.json says"):
        FeatureStore.open(store.path).mapped_rows(verify=False)


def test_mapped_rows_need_parts_of_one_width():
    with pytest.raises(ValueError, match="at least one part"):
        MappedRows([])
    with pytest.raises(ValueError, match="same D"):
        MappedRows([torch.zeros(2, 3), torch.zeros(2, 4)])


def test_a_pass_gives_each_shards_pages_back_and_rows_read_the_same_after(store, monkeypatch):
    """`chunks` releases every shard's mapping once it has streamed it (so a pass over a
    store holds one shard's pages); rows read afterwards come back from the file unchanged."""
    from ebrm.features import mapped

    rows, _ = store.mapped_rows()
    emb, _ = _reference(store)
    released = []
    real_release = mapped._release
    monkeypatch.setattr(mapped, "_release", lambda m: (released.append(m), real_release(m)))
    assert torch.equal(torch.cat([c for _, c in rows.chunks(size=4)]), emb)
    assert len(released) == len(rows.parts) == len(store.manifest["shards"]) > 1
    assert all(m is not None for m in released) and len({id(m) for m in released}) == len(released)
    assert torch.equal(rows[torch.arange(store.num_rows)], emb)  # after the pages were dropped
    assert torch.equal(torch.cat([c for _, c in rows.chunks()]), emb)  # and a second pass
