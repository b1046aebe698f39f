"""`ebrm extract` from the command line."""

from __future__ import annotations

import json

import torch

from ebrm.cli import main
from ebrm.features import FeatureStore, load_features


def _data(tmp_path):
    rows = [
        {"prompt": f"question {i % 4}", "chosen": f"answer {i} good", "rejected": "no idea"}
        for i in range(12)
    ]
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def test_help(capsys):
    assert main(["extract", "--help"]) == 0
    text = capsys.readouterr().out
    for option in (
        "--rm", "--data", "--out", "--batch-size", "--max-length", "--truncation-side",
        "--dtype", "--storage-dtype", "--shard-size", "--device", "--overwrite",
    ):  # fmt: skip
        assert option in text


def test_extract_then_refuse_other_settings_then_overwrite(tmp_path, tiny_rm_dir, capsys):
    data, out = _data(tmp_path), tmp_path / "store"
    argv = ["extract", "--rm", str(tiny_rm_dir), "--data", str(data), "--out", str(out)]
    argv += ["--max-length", "32", "--shard-size", "5", "--device", "cpu"]
    assert main([*argv, "--storage-dtype", "bf16"]) == 0
    summary = capsys.readouterr().out
    store = FeatureStore.open(out)
    # 4 prompts x "no idea" are 4 texts shared by 12 rejected responses
    assert (store.num_rows, store.num_pairs, store.dim) == (16, 12, 32)
    assert "16 rows (12 pairs), dim 32, bfloat16" in summary
    assert store.manifest["data"]["spec"] == str(data)
    assert store.provenance["max_length"] == 32
    features = load_features(out)
    assert features.embeddings.dtype == torch.float32

    assert main([*argv, "--storage-dtype", "bf16", "--truncation-side", "right"]) == 2
    error = capsys.readouterr().err
    # named from the store's manifest, by flag, before the RM loads
    assert "extracted with --truncation-side left, not right: pass its settings" in error
    assert "--overwrite" in error
    assert (
        main([*argv, "--storage-dtype", "bf16", "--truncation-side", "right", "--overwrite"]) == 0
    )
    assert FeatureStore.open(out).provenance["truncation_side"] == "right"
