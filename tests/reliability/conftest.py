"""Fixtures of the reliability suite: a fork server for kill tests, a shared small store,
and the report of how many faults and inputs were tried."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.reliability import _report
from tests.reliability._forkserver import ForkServer


def pytest_terminal_summary(terminalreporter) -> None:
    counts = _report.as_dict()
    if not counts:
        return
    terminalreporter.section("ebrm reliability: cases tried")
    for target, outcomes in counts.items():
        detail = ", ".join(f"{k} {v}" for k, v in outcomes.items() if k != "tried")
        terminalreporter.write_line(f"{target}: {outcomes['tried']} ({detail})")
    path = os.environ.get("EBRM_RELIABILITY_REPORT")
    if path:
        Path(path).write_text(json.dumps(counts, indent=2, sort_keys=True) + "\n")


@pytest.fixture(scope="session")
def fork_server(tmp_path_factory, tiny_rm_dir):
    """One process that imported torch/transformers/ebrm, forking a child per command.

    It is warmed up with a small extraction and training run, so a child starts working
    at once instead of importing for seconds.
    """
    root = tmp_path_factory.mktemp("fork-server-warmup")
    data = write_pairs(root / "pairs.jsonl", 12)
    server = ForkServer()
    try:
        log = root / "log.txt"
        extract = extract_argv(tiny_rm_dir, data, root / "store")
        assert server.warm(extract, log) == 0, log.read_text()
        train = ["train", "--features", root / "store", "--out", root / "model", "--steps", "2"]
        assert server.warm([*train, "--no-progress", "--device", "cpu"], log) == 0, log.read_text()
        yield server
    finally:
        server.close()


WORDS = [
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
    "on",
    "every",
    "hill",
]


def write_pairs(path: Path, n: int) -> Path:
    """prompt/chosen/rejected JSONL: texts of varied length, some repeated (dedup is used)."""
    with open(path, "w", encoding="utf-8") as handle:
        for i in range(n):
            body = " ".join(WORDS[(i + k) % len(WORDS)] for k in range(3 + (i * 7) % 40))
            row = {
                "prompt": f"Question {i % 9}: tell me about {WORDS[i % len(WORDS)]}",
                "chosen": f"Answer {i}: {body}",
                "rejected": "I don't know." if i % 5 == 0 else f"No. {i} {body[: (i % 13) * 3]}",
            }
            handle.write(json.dumps(row) + "\n")
    return path


def extract_argv(rm_dir: Path, data: Path, out: Path) -> list[str]:
    return [
        "extract", "--rm", str(rm_dir), "--data", str(data), "--out", str(out),
        "--max-length", "64", "--batch-size", "4", "--shard-size", "8", "--device", "cpu",
    ]  # fmt: skip


@pytest.fixture(scope="session")
def reference_store(tmp_path_factory, fork_server, tiny_rm_dir):
    """An uninterrupted extraction of 120 pairs (~30 shards of 8 rows), with its timing."""
    import time

    root = tmp_path_factory.mktemp("reference-store")
    data = write_pairs(root / "pairs.jsonl", 120)
    out = root / "store"
    started = time.perf_counter()
    pid = fork_server.run(extract_argv(tiny_rm_dir, data, out), root / "log.txt")
    code = fork_server.wait(pid)
    seconds = time.perf_counter() - started
    assert code == 0, (root / "log.txt").read_text()
    return {"data": data, "store": out, "seconds": seconds}
