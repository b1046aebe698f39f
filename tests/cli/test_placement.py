"""--device-map, --max-memory, --offload-folder: parsed and checked before any heavy import,
and `ebrm extract --device-map auto` writes the store one-device extraction writes."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from ebrm.cli import app
from ebrm.cli._placement import parse_max_memory, placement
from ebrm.errors import ConfigError
from ebrm.features.store import FeatureStore


def test_max_memory_is_read_as_accelerate_expects_it():
    assert parse_max_memory("0=20GiB, 1=18.5GB,cpu=60GiB,disk=1000") == {
        0: "20GiB",
        1: "18.5GB",
        "cpu": "60GiB",
        "disk": 1000,
    }
    with pytest.raises(ConfigError, match="cannot read 'gpu0=1GiB'"):
        parse_max_memory("gpu0=1GiB")


def test_placement_without_a_device_map_is_one_device(tmp_path):
    assert placement(device="cpu", device_map=None, max_memory=None, offload_folder=None) == {}
    assert placement(
        device=None, device_map="auto", max_memory="cpu=1", offload_folder=tmp_path
    ) == {"device_map": "auto", "max_memory": {"cpu": 1}, "offload_folder": str(tmp_path)}


def test_extract_with_device_map_writes_the_one_device_store(tiny_rm_dir, tmp_path):
    row = {"prompt": "Hi?", "chosen": "Hello there, friend.", "rejected": "No."}
    rows = [{**row, "prompt": f"Q{i}: " + "why? " * i} for i in range(6)]
    data = tmp_path / "pairs.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    common = ["extract", "--rm", str(tiny_rm_dir), "--data", str(data), "--no-progress"]
    runner = CliRunner()
    one = runner.invoke(app, [*common, "--out", str(tmp_path / "one"), "--device", "cpu"])
    assert one.exit_code == 0, one.output
    split = runner.invoke(
        app,
        [*common, "--out", str(tmp_path / "split"), "--device-map", "auto", "--max-memory",
         "cpu=1", "--offload-folder", str(tmp_path / "offload")],
    )  # fmt: skip
    assert split.exit_code == 0, split.output
    a, b = FeatureStore.open(tmp_path / "one"), FeatureStore.open(tmp_path / "split")
    assert a.manifest["base_rm"] == b.manifest["base_rm"]  # same weights hash
    assert a.manifest["plan_hash"] == b.manifest["plan_hash"]
    ta, tb = a.load(), b.load()
    assert float((ta.embeddings - tb.embeddings).abs().max()) <= 1e-5
    assert float((ta.rewards - tb.rewards).abs().max()) <= 1e-5
    assert torch.equal(ta.chosen, tb.chosen) and torch.equal(ta.rejected, tb.rejected)
