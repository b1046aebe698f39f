"""Damaged artifacts are detected and reported (naming the file), never silently read; a
resumed extraction re-extracts a damaged shard."""

from __future__ import annotations

import json
import logging
import shutil
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch

from ebrm.errors import CorruptArtifactError, IncompatibleArtifactError
from ebrm.features import FeatureStore, extract_features, load_features
from tests.reliability import _report


@contextmanager
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the reference store was made with one thread: bit-identical
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def flip_byte(path: Path, *, from_end: int = 5) -> None:
    """Flip one byte near the end: inside the tensor data, past the safetensors header."""
    data = bytearray(path.read_bytes())
    data[-from_end] ^= 0x5A
    path.write_bytes(bytes(data))


def garbage(path: Path) -> None:
    path.write_bytes(b"\xff\xfe\x00garbage{" * 3)


def delete(path: Path) -> None:
    path.unlink()


def change_checksum(path: Path) -> None:
    manifest = json.loads(path.read_text())
    manifest["shards"][1]["sha256"] = "0" * 64
    path.write_text(json.dumps(manifest))


def drop_field(path: Path) -> None:
    manifest = json.loads(path.read_text())
    del manifest["num_rows"]
    path.write_text(json.dumps(manifest))


@pytest.fixture()
def store_copy(tmp_path, reference_store) -> Path:
    return Path(shutil.copytree(reference_store["store"], tmp_path / "store"))


STORE_CASES = [
    # (file, damage, error type, expected text in the message)
    ("shard-00001.safetensors", truncate, CorruptArtifactError, "shard-00001.safetensors"),
    ("shard-00001.safetensors", flip_byte, CorruptArtifactError, "shard-00001.*checksum"),
    ("shard-00001.safetensors", delete, CorruptArtifactError, "shard-00001.*missing"),
    ("shard-00001.safetensors", garbage, CorruptArtifactError, "shard-00001.safetensors"),
    ("pairs.safetensors", flip_byte, CorruptArtifactError, "pairs.safetensors.*checksum"),
    ("pairs.safetensors", truncate, CorruptArtifactError, "pairs.safetensors"),
    ("pairs.json", truncate, CorruptArtifactError, "pairs.json.*checksum"),
    ("manifest.json", truncate, CorruptArtifactError, "manifest.json.*not valid JSON"),
    ("manifest.json", garbage, CorruptArtifactError, "manifest.json.*not valid JSON"),
    ("manifest.json", drop_field, CorruptArtifactError, "manifest.json.*num_rows"),
    ("manifest.json", change_checksum, CorruptArtifactError, "shard-00001.*checksum"),
    ("manifest.json", delete, IncompatibleArtifactError, "no manifest.json"),
]


@pytest.mark.parametrize(
    ("name", "damage", "error", "match"),
    STORE_CASES,
    ids=[f"{n}-{d.__name__}" for n, d, _, _ in STORE_CASES],
)
def test_damaged_store_is_reported_naming_the_file(store_copy, name, damage, error, match):
    damage(store_copy / name)
    with pytest.raises(error, match=match):
        load_features(store_copy)
    _report.count("faults: damaged feature-store file", "reported, naming the file")


def test_unverified_read_of_a_truncated_shard_is_still_reported(store_copy):
    truncate(store_copy / "shard-00002.safetensors")
    with pytest.raises(CorruptArtifactError, match="shard-00002.safetensors"):
        FeatureStore.open(store_copy).load(verify=False)
    _report.count("faults: damaged feature-store file", "reported, naming the file")


def test_pair_info_of_a_truncated_pairs_json_is_reported(store_copy):
    truncate(store_copy / "pairs.json")
    with pytest.raises(CorruptArtifactError, match="pairs.json"):
        FeatureStore.open(store_copy).pair_info()
    _report.count("faults: damaged feature-store file", "reported, naming the file")


def test_resume_reextracts_damaged_shards_and_equals_reference(
    store_copy, reference_store, tiny_rm_dir, caplog
):
    from ebrm.data import load_pairs
    from ebrm.rm import BaseRewardModel

    manifest = json.loads((store_copy / "manifest.json").read_text())
    truncate(store_copy / "shard-00001.safetensors")
    flip_byte(store_copy / "shard-00003.safetensors")
    (store_copy / "shard-00005.safetensors").unlink()
    # a leftover temp file of a killed atomic write
    (store_copy / ".shard-00007.safetensors.abc123.tmp").write_bytes(b"half")
    rm = BaseRewardModel.from_pretrained(tiny_rm_dir, device="cpu", max_length=64)
    pairs = load_pairs(str(reference_store["data"]))
    with one_thread(), caplog.at_level(logging.WARNING, logger="ebrm.features.prepare"):
        extract_features(rm, pairs, store_copy, batch_size=4, shard_size=8, progress=False)
    warned = caplog.text
    for index in (1, 3, 5):
        assert f"shard-{index:05d}.safetensors" in warned  # reported, then re-extracted
    assert "shard-00002" not in warned  # intact shards are kept
    assert not list(store_copy.glob(".*.tmp"))
    got, want = load_features(store_copy), load_features(reference_store["store"])
    for name in ("embeddings", "rewards", "chosen", "rejected"):
        assert torch.equal(getattr(got, name), getattr(want, name)), name
    assert len(json.loads((store_copy / "manifest.json").read_text())["shards"]) == len(
        manifest["shards"]
    )
    _report.count("faults: damaged shards then resume", "re-extracted, equal to reference", 3)


def test_resume_over_a_damaged_manifest_refuses_instead_of_guessing(
    store_copy, reference_store, tiny_rm_dir
):
    from ebrm.data import load_pairs
    from ebrm.rm import BaseRewardModel

    truncate(store_copy / "manifest.json")
    rm = BaseRewardModel.from_pretrained(tiny_rm_dir, device="cpu", max_length=64)
    pairs = load_pairs(str(reference_store["data"]))
    with pytest.raises(CorruptArtifactError, match="manifest.json.*--overwrite"):
        extract_features(rm, pairs, store_copy, batch_size=4, shard_size=8, progress=False)
    _report.count("faults: damaged feature-store file", "resume refused, naming the file")


# ---- the refined-model directory ----------------------------------------------------------


def make_model(out: Path, *, seed: int = 0) -> Path:
    from ebrm.energy.config import EnergyHeadConfig
    from ebrm.energy.head import EnergyHead
    from ebrm.energy.normalize import RewardNormalizer
    from ebrm.model import EnergyRewardModel
    from ebrm.refine.config import RefineConfig

    torch.manual_seed(seed)
    head = EnergyHead(EnergyHeadConfig(embedding_dim=8, reward_widths=(4, 8), joint_widths=(8,)))
    normalizer = RewardNormalizer(scale=4.0).fit(torch.randn(64))
    model = EnergyRewardModel(head, normalizer, RefineConfig(grid_size=32), {}, {})
    model.save_pretrained(out)
    return out


def wrong_format(path: Path) -> None:
    config = json.loads(path.read_text())
    config["format"] = "something-else"
    path.write_text(json.dumps(config))


def wrong_dims(path: Path) -> None:
    config = json.loads(path.read_text())
    config["head"]["embedding_dim"] = 9
    path.write_text(json.dumps(config))


MODEL_CASES = [
    ("energy_head.safetensors", truncate, CorruptArtifactError, "energy_head.safetensors"),
    ("energy_head.safetensors", garbage, CorruptArtifactError, "energy_head.safetensors"),
    ("energy_head.safetensors", delete, CorruptArtifactError, "energy_head.safetensors.*missing"),
    ("config.json", truncate, CorruptArtifactError, "config.json.*not valid JSON"),
    ("config.json", garbage, CorruptArtifactError, "config.json.*not valid JSON"),
    ("config.json", delete, CorruptArtifactError, "config.json.*missing"),
    ("config.json", wrong_format, IncompatibleArtifactError, "config.json.*not an ebrm"),
    ("config.json", wrong_dims, CorruptArtifactError, "energy_head.safetensors.*does not match"),
]


@pytest.mark.parametrize(
    ("name", "damage", "error", "match"),
    MODEL_CASES,
    ids=[f"{n}-{d.__name__}" for n, d, _, _ in MODEL_CASES],
)
def test_damaged_model_is_reported_naming_the_file(tmp_path, name, damage, error, match):
    from ebrm.model import EnergyRewardModel

    out = make_model(tmp_path / "model")
    damage(out / name)
    with pytest.raises(error, match=match):
        EnergyRewardModel.from_pretrained(out, device="cpu")
    _report.count("faults: damaged refined-model file", "reported, naming the file")


def test_bit_flip_in_model_weights_is_detected(tmp_path):
    from ebrm.model import EnergyRewardModel

    out = make_model(tmp_path / "model")
    flip_byte(out / "energy_head.safetensors", from_end=7)  # a mantissa byte: stays finite
    with pytest.raises(CorruptArtifactError, match="energy_head.safetensors"):
        EnergyRewardModel.from_pretrained(out, device="cpu")
    _report.count("faults: damaged refined-model file", "reported, naming the file")
