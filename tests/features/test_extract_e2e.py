"""End-to-end extraction with the real BaseRewardModel and a tiny model: values, SIGKILL
mid-run then resume, and 2 processes (gloo) equal to 1."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch

from ebrm.data import load_pairs
from ebrm.features import FeatureStore, extract_features, load_features
from ebrm.rm import BaseRewardModel

ROOT = Path(__file__).resolve().parents[2]


def write_pairs(path: Path, n: int) -> Path:
    """A prompt/chosen/rejected JSONL with texts of varied length (and one repeated text)."""
    words = [
        "the",
        "quick",
        "brown",
        "fox",
        "jumps",
        "over",
        "a",
        "lazy",
        "dog",
        "while",
        "it",
        "rains",
    ]
    with open(path, "w") as handle:
        for i in range(n):
            body = " ".join(words[(i + k) % len(words)] for k in range(3 + (i * 7) % 40))
            row = {
                "prompt": f"Question {i % 9}: tell me about {words[i % len(words)]}",
                "chosen": f"Answer {i}: {body}",
                "rejected": "I don't know." if i % 5 == 0 else f"No. {i} {body[: (i % 13) * 3]}",
            }
            handle.write(json.dumps(row) + "\n")
    return path


def _env() -> dict[str, str]:
    # One thread everywhere: faster on a busy machine, and the reference below uses one
    # thread too, so results are bit-identical (the reduction order depends on threads).
    return {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "HF_HUB_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "PYTHONPATH": str(ROOT / "src"),
    }


def _cli(rm_dir: Path, data: Path, out: Path, *extra: str) -> list[str]:
    return [
        "-m", "ebrm", "extract", "--rm", str(rm_dir), "--data", str(data), "--out", str(out),
        "--max-length", "64", "--batch-size", "4", "--shard-size", "16", "--device", "cpu",
        *extra,
    ]  # fmt: skip


@contextmanager
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _reference(rm_dir: Path, data: Path, out: Path):
    """An uninterrupted single-process extraction, in this process."""
    rm = BaseRewardModel.from_pretrained(rm_dir, device="cpu", max_length=64)
    pairs = load_pairs(str(data))
    with _one_thread():
        store = extract_features(rm, pairs, out, batch_size=4, shard_size=16, progress=False)
    return rm, pairs, store.load()


def _assert_equal(a, b) -> None:
    for name in ("embeddings", "rewards", "chosen", "rejected"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name


def test_rows_equal_one_at_a_time_embeddings(tmp_path, tiny_rm_dir):
    data = write_pairs(tmp_path / "pairs.jsonl", 20)
    rm, pairs, features = _reference(tiny_rm_dir, data, tmp_path / "store")
    texts = [rm.format(c) for p in pairs for c in (p.chosen, p.rejected)]
    assert features.embeddings.shape == (len(set(texts)), rm.hidden_size)
    for i, pair in enumerate(pairs):  # batch 1: no padding, no sorting, no dedup
        for conv, rows in ((pair.chosen, features.chosen), (pair.rejected, features.rejected)):
            with _one_thread():
                emb, reward = rm.embed_texts([rm.format(conv)], batch_size=1)
            torch.testing.assert_close(features.embeddings[rows[i]], emb[0], rtol=1e-5, atol=1e-5)
            torch.testing.assert_close(features.rewards[rows[i]], reward[0], rtol=1e-5, atol=1e-5)
    # the stored reward is the RM's own head applied to the stored embedding
    torch.testing.assert_close(rm.head_reward(features.embeddings), features.rewards)
    assert FeatureStore.open(tmp_path / "store").provenance == rm.provenance()


def test_sigkill_mid_run_then_rerun_equals_uninterrupted(tmp_path, tiny_rm_dir):
    data = write_pairs(tmp_path / "pairs.jsonl", 300)
    out = tmp_path / "killed"
    process = subprocess.Popen(
        [sys.executable, *_cli(tiny_rm_dir, data, out)],
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while not list(out.glob("shard-*.safetensors")) and time.monotonic() < deadline:
            if process.poll() is not None:
                pytest.fail(f"extraction exited ({process.returncode}) before its first shard")
            time.sleep(0.005)
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait()
    assert process.returncode == -signal.SIGKILL  # killed, not finished
    partial = json.loads((out / "manifest.json").read_text())
    assert not partial["complete"] and len(partial["shards"]) < partial["num_shards"]

    rerun = subprocess.run(
        [sys.executable, *_cli(tiny_rm_dir, data, out)], env=_env(), capture_output=True, text=True
    )
    assert rerun.returncode == 0, rerun.stderr
    assert f"{partial['num_rows']} rows" in rerun.stdout
    resumed = FeatureStore.open(out)
    records = resumed.manifest["shards"]
    covered = [r for s in records for r in range(s["start"], s["end"])]
    assert covered == list(range(resumed.num_rows))  # every row exactly once
    assert sorted(p.name for p in out.glob("shard-*")) == sorted(s["file"] for s in records)
    _, _, reference = _reference(tiny_rm_dir, data, tmp_path / "reference")
    _assert_equal(load_features(out), reference)


@pytest.mark.slow
def test_two_processes_equal_one(tmp_path, tiny_rm_dir):
    data = write_pairs(tmp_path / "pairs.jsonl", 60)
    launch = [
        sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes",
        "2", "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
    ]  # fmt: skip
    # On a machine without GPUs accelerate forms a gloo CPU process group (see process_state).
    env = {**_env(), "CUDA_VISIBLE_DEVICES": ""}
    result = subprocess.run(
        [*launch, *_cli(tiny_rm_dir, data, tmp_path / "two")],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("feature store") == 1  # one summary, from rank 0
    store = FeatureStore.open(tmp_path / "two")
    assert store.complete and not list(store.path.glob("progress-rank-*"))
    _, _, reference = _reference(tiny_rm_dir, data, tmp_path / "one")
    _assert_equal(store.load(), reference)
