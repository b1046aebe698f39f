"""A write that fails half-way (disk full: OSError ENOSPC) leaves the previous good state
intact: the atomic-write helper, the feature store mid-extraction, the refined model."""

from __future__ import annotations

import errno
import hashlib
import pathlib
import shutil
from pathlib import Path

import pytest
import torch

from ebrm._io import atomic_write_bytes, atomic_write_json
from ebrm.features import FeatureStore, extract_features, load_features
from tests.reliability import _report
from tests.reliability.test_corruption import make_model, one_thread


def disk_full() -> OSError:
    return OSError(errno.ENOSPC, "No space left on device (simulated)")


class FailingWrites:
    """Patches Path.write_bytes: the `fail_at`-th write to a temp file whose name starts
    with `prefix` writes half of its data, then raises ENOSPC."""

    def __init__(self, monkeypatch, prefix: str, fail_at: int) -> None:
        self.prefix, self.fail_at, self.seen, self.failed = prefix, fail_at, 0, False
        original = pathlib.Path.write_bytes

        def write_bytes(path, data):
            if path.name.startswith(self.prefix) and path.name.endswith(".tmp"):
                self.seen += 1
                if self.seen == self.fail_at:
                    self.failed = True
                    original(path, bytes(data)[: len(data) // 2])
                    raise disk_full()
            return original(path, data)

        monkeypatch.setattr(pathlib.Path, "write_bytes", write_bytes)


def tree_digest(directory: Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.iterdir())
        if p.is_file()
    }


def test_atomic_write_keeps_the_old_file_when_a_write_fails(tmp_path, monkeypatch):
    target = tmp_path / "state.json"
    atomic_write_json(target, {"good": True})
    before = target.read_bytes()
    failing = FailingWrites(monkeypatch, ".state.json.", fail_at=1)
    with pytest.raises(OSError) as info:
        atomic_write_bytes(target, b"x" * 10_000)
    assert info.value.errno == errno.ENOSPC and failing.failed
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]  # temp file removed
    _report.count("faults: disk full (ENOSPC) mid-write", "previous state intact")


@pytest.mark.parametrize(
    ("prefix", "fail_at"), [(".shard-", 3), (".manifest.json.", 4), (".pairs.safetensors.", 1)]
)
def test_disk_full_during_extraction_keeps_a_consistent_store_and_rerun_finishes(
    tmp_path, monkeypatch, reference_store, tiny_rm_dir, prefix, fail_at
):
    from ebrm.data import load_pairs
    from ebrm.rm import BaseRewardModel

    rm = BaseRewardModel.from_pretrained(tiny_rm_dir, device="cpu", max_length=64)
    pairs = load_pairs(str(reference_store["data"]))
    out = tmp_path / "store"
    failing = FailingWrites(monkeypatch, prefix, fail_at)
    with one_thread(), pytest.raises(OSError) as info:
        extract_features(rm, pairs, out, batch_size=4, shard_size=8, progress=False)
    assert info.value.errno == errno.ENOSPC and failing.failed
    assert not list(out.glob(".*.tmp"))  # the half-written temp file is gone
    if (out / "manifest.json").exists():  # what is recorded is complete and verifies
        store = FeatureStore.open(out)
        assert not store.complete
        for record in store.manifest["shards"]:
            store._check_file(record["file"], record["sha256"])
    monkeypatch.undo()  # the disk has space again
    with one_thread():
        extract_features(rm, pairs, out, batch_size=4, shard_size=8, progress=False)
    got, want = load_features(out), load_features(reference_store["store"])
    for name in ("embeddings", "rewards", "chosen", "rejected"):
        assert torch.equal(getattr(got, name), getattr(want, name)), name
    _report.count("faults: disk full (ENOSPC) mid-write", "previous state intact")


def test_disk_full_rewriting_a_complete_store_keeps_it_readable(
    tmp_path, monkeypatch, reference_store, tiny_rm_dir
):
    from ebrm.data import load_pairs
    from ebrm.rm import BaseRewardModel

    out = Path(shutil.copytree(reference_store["store"], tmp_path / "store"))
    before = tree_digest(out)
    rm = BaseRewardModel.from_pretrained(tiny_rm_dir, device="cpu", max_length=64)
    pairs = load_pairs(str(reference_store["data"]))
    FailingWrites(monkeypatch, ".manifest.json.", fail_at=1)  # a rerun rewrites the manifest
    with one_thread(), pytest.raises(OSError):
        extract_features(rm, pairs, out, batch_size=4, shard_size=8, progress=False)
    after = tree_digest(out)
    assert after.keys() == before.keys()
    assert after["manifest.json"] == before["manifest.json"]
    load_features(out)  # still complete and verifies
    _report.count("faults: disk full (ENOSPC) mid-write", "previous state intact")


@pytest.mark.parametrize("where", ["weights", "config"])
def test_disk_full_saving_a_model_keeps_the_previous_model(tmp_path, monkeypatch, where):
    import safetensors.torch

    from ebrm.model import EnergyRewardModel

    out = make_model(tmp_path / "model", seed=0)
    before = tree_digest(out)
    new = EnergyRewardModel.from_pretrained(make_model(tmp_path / "other", seed=1))
    if where == "weights":
        original = safetensors.torch.save_file

        def save_file(tensors, filename, metadata=None):
            original(tensors, filename, metadata=metadata)
            Path(filename).write_bytes(Path(filename).read_bytes()[:100])
            raise disk_full()

        monkeypatch.setattr(safetensors.torch, "save_file", save_file)
    else:
        FailingWrites(monkeypatch, ".config.json.", fail_at=1)
    with pytest.raises(OSError) as info:
        new.save_pretrained(out)
    assert info.value.errno == errno.ENOSPC
    monkeypatch.undo()
    assert tree_digest(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model", "other"]  # no temp dirs
    EnergyRewardModel.from_pretrained(out)  # the previous model still loads
    _report.count("faults: disk full (ENOSPC) mid-write", "previous state intact")


def test_disk_full_in_the_cli_is_one_line_and_keeps_the_previous_model(
    tmp_path, monkeypatch, capsys
):
    from ebrm.cli import main
    from tests.fakes import FakeRM, make_pairs

    store = tmp_path / "store"
    extract_features(FakeRM(dim=8), make_pairs(40, duplicates=False), store, progress=False)
    out = tmp_path / "model"
    argv = ["train", "--features", str(store), "--out", str(out), "--steps", "5"]
    assert main([*argv, "--seed", "0", "--no-progress"]) == 0
    before = tree_digest(out)
    capsys.readouterr()

    FailingWrites(monkeypatch, ".config.json.", fail_at=1)
    assert main([*argv, "--seed", "1", "--no-progress", "--overwrite"]) == 1
    err = capsys.readouterr().err
    assert "No space left on device" in err and "Traceback" not in err
    monkeypatch.undo()
    assert tree_digest(out) == before
    _report.count("faults: disk full (ENOSPC) mid-write", "previous state intact")
