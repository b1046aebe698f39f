"""One embedding pass per text and RM: `base-rm train` leaves the store of its data, which
is the store `ebrm extract` writes, and later commands read its rows instead of embedding
the same texts again (issue 17 item 3)."""

from __future__ import annotations

import json

import pytest
import torch

from ebrm.cli import main
from ebrm.features import FeatureStore
from ebrm.rm.adapter import BaseRewardModel

PROVENANCE = ("weights_hash", "hidden_size", "dtype", "max_length", "truncation_side")


def _write(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def _pairs(start, stop):
    return [
        {"prompt": f"question {i % 7}", "chosen": f"answer {i} fine" + " yes" * (i % 5),
         "rejected": f"answer {i} poor" + " no" * (i % 3)}
        for i in range(start, stop)
    ]  # fmt: skip


@pytest.fixture
def embedded(monkeypatch):
    """Every token-id row the base RM's forward pass sees, over the whole test."""
    seen: list[tuple[int, ...]] = []
    forward = BaseRewardModel._forward_batch

    def counting(self, rows):
        seen.extend(tuple(row) for row in rows)
        return forward(self, rows)

    monkeypatch.setattr(BaseRewardModel, "_forward_batch", counting)
    return seen


@pytest.fixture
def trained(tmp_path, tiny_rm_dir, embedded, capsys):
    data = _write(tmp_path / "train.jsonl", _pairs(0, 24))
    out = tmp_path / "rm"
    argv = ["base-rm", "train", "--model", str(tiny_rm_dir), "--data", str(data)]
    argv += ["--out", str(out), "--freeze-encoder", "--max-length", "48", "--device", "cpu"]
    assert main([*argv, "--no-progress", "--seed", "1"]) == 0
    printed = capsys.readouterr().out
    assert f"feature store {out / 'features'}" in printed
    return data, out


def test_base_rm_store_is_the_store_extract_writes(trained, tmp_path, embedded):
    data, rm = trained
    assert len(embedded) == len(set(embedded))  # base-rm train embedded each text once
    fresh = tmp_path / "fresh"
    argv = ["extract", "--rm", str(rm), "--data", str(data), "--out", str(fresh)]
    assert main([*argv, "--max-length", "48", "--no-reuse", "--no-progress"]) == 0
    a, b = FeatureStore.open(rm / "features"), FeatureStore.open(fresh)
    assert (a.num_rows, a.num_pairs, a.dim) == (b.num_rows, b.num_pairs, b.dim)
    assert a.pair_info() == b.pair_info() and a.prompt_hashes() == b.prompt_hashes()
    assert torch.equal(a.row_keys(), b.row_keys())
    fa, fb = a.load(), b.load()
    assert torch.equal(fa.chosen, fb.chosen) and torch.equal(fa.rejected, fb.rejected)
    assert torch.allclose(fa.embeddings, fb.embeddings, atol=1e-5)
    assert torch.allclose(fa.rewards, fb.rewards, atol=1e-5)
    for key in PROVENANCE:
        assert a.provenance[key] == b.provenance[key], key
    assert a.provenance["name_or_path"] == str(rm.resolve())
    for key in ("max_length", "truncation_side", "embedding_dim", "storage_dtype"):
        assert a.manifest[key] == b.manifest[key], key
    # the stored rewards are the saved RM's (its head was fitted after extraction)
    loaded = BaseRewardModel.from_pretrained(rm, device="cpu", max_length=48)
    assert torch.allclose(fa.rewards, loaded.head_reward(fa.embeddings), atol=1e-6)


def test_extract_reuses_the_store_in_the_rm_directory(trained, tmp_path, embedded, capsys):
    data, rm = trained
    before = len(embedded)
    out = tmp_path / "again"
    argv = ["extract", "--rm", str(rm), "--data", str(data), "--out", str(out)]
    assert main([*argv, "--max-length", "48", "--no-progress"]) == 0
    assert len(embedded) == before  # nothing embedded: every text was in rm/features
    assert f"reused from {rm / 'features'}" in capsys.readouterr().out
    a, b = FeatureStore.open(rm / "features").load(), FeatureStore.open(out).load()
    assert torch.equal(a.embeddings, b.embeddings) and torch.equal(a.rewards, b.rewards)
    # new data: only its new texts are embedded, each once
    more = _write(tmp_path / "more.jsonl", _pairs(12, 36))
    argv = ["extract", "--rm", str(rm), "--data", str(more), "--out", str(tmp_path / "more")]
    assert main([*argv, "--max-length", "48", "--no-progress"]) == 0
    assert len(embedded) == len(set(embedded))
    assert "24 texts reused" in capsys.readouterr().out  # those of pairs 12..23
    # other settings: the RM's store does not match, so nothing is reused (no error) ...
    argv = ["extract", "--rm", str(rm), "--data", str(data), "--out", str(tmp_path / "m32")]
    assert main([*argv, "--max-length", "32", "--no-progress"]) == 0
    assert "reused" not in capsys.readouterr().out
    # ... but an explicit --reuse of a mismatched store is a user error naming both values
    argv = ["extract", "--rm", str(rm), "--data", str(data), "--out", str(tmp_path / "x")]
    argv += ["--reuse", str(rm / "features"), "--max-length", "32", "--no-progress"]
    assert main(argv) == 2
    error = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error")]
    assert len(error) == 1 and "max length 48 vs 32" in error[0]
