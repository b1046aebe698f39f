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
    assert a.provenance == b.provenance  # name, revision and model type too
    assert a.provenance["name_or_path"] == str(rm.resolve())
    for key in ("embedding_dim", "storage_dtype"):  # the tokenisation: in provenance
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


def _close(a, b, where=""):
    """Equal JSON values, floats to 1e-4 relative (a text embedded in another batch)."""
    if isinstance(a, dict):
        assert sorted(a) == sorted(b), where
        for key in a:
            _close(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, list):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _close(x, y, f"{where}[{i}]")
    elif isinstance(a, float) and isinstance(b, float):
        assert b == pytest.approx(a, rel=1e-4, abs=1e-5), where
    else:
        assert a == b, where


def test_eval_and_bon_read_stored_texts_and_embed_only_the_rest(
    trained, tmp_path, tiny_rm_dir, embedded, capsys
):
    data, rm = trained
    model = tmp_path / "ebrm"
    argv = ["train", "--features", str(rm / "features"), "--out", str(model)]
    assert main([*argv, "--steps", "30", "--no-progress", "--device", "cpu"]) == 0
    test = _write(tmp_path / "test.jsonl", _pairs(16, 32))  # pairs 16..23 are in the store
    store_rows = set(embedded)
    outputs = {}
    for name, extra in (("reused", ["--features", str(rm / "features")]), ("fresh", [])):
        before = len(embedded)
        argv = ["eval", "--model", str(model), "--benchmark", "pairwise", "--data", str(test)]
        argv += ["--out", str(tmp_path / f"eval-{name}"), "--no-plots", "--no-progress"]
        assert main([*argv, "--device", "cpu", "--n-boot", "200", *extra]) == 0
        outputs[name] = embedded[before:]
    # with the store, only the 16 texts of pairs 24..31 are embedded, each once
    assert len(outputs["reused"]) == len(set(outputs["reused"])) == 16
    assert not set(outputs["reused"]) & store_rows
    assert len(outputs["fresh"]) == 32  # without it, every text again
    for file in ("metrics.json", "examples-base.jsonl", "examples-refined.jsonl"):
        a, b = ((tmp_path / f"eval-{n}" / file).read_text() for n in ("reused", "fresh"))
        if file.endswith(".jsonl"):
            a, b = ([json.loads(line) for line in t.splitlines()] for t in (a, b))
        else:
            a, b = json.loads(a), json.loads(b)
        _close(a, b, file)

    cands = [{"prompt": f"question {i % 7}", "candidates": [p["chosen"], p["rejected"], "new"]}
             for i, p in zip(range(16, 20), _pairs(16, 20), strict=True)]  # fmt: skip
    cands_file = _write(tmp_path / "cands.jsonl", cands)
    best = {}
    for name, extra in (("reused", ["--features", str(rm / "features")]), ("fresh", [])):
        before = len(embedded)
        argv = ["bon", "--model", str(model), "--candidates", str(cands_file)]
        argv += ["--out", str(tmp_path / f"bon-{name}.jsonl"), "--device", "cpu", *extra]
        assert main(argv) == 0
        outputs[name] = embedded[before:]
        best[name] = [json.loads(line) for line in (tmp_path / f"bon-{name}.jsonl").open()]
    # the candidates of pairs 16..19 are stored; only the 4 "new" answers are embedded
    assert len(outputs["reused"]) == len(set(outputs["reused"])) == 4
    assert len(outputs["fresh"]) == 12
    for rows in best.values():  # the posterior mode (grid argmax + polish) moves ~1e-3 with
        for row in rows:  # the float noise of another batch; every other column is stable
            for record in row["scores"]:
                record.pop("mode")
    _close(best["reused"], best["fresh"], "bon")
