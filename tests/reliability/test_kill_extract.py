"""`ebrm extract` SIGKILLed at seeded random moments, again and again, then resumed: the
finished store equals an uninterrupted run, and no kill ever leaves a manifest that
records a row that is not safely on disk."""

from __future__ import annotations

import json
import random
import signal
import time

import torch

from ebrm.features import FeatureStore, load_features
from tests.reliability import _report
from tests.reliability.conftest import extract_argv

KILLS = 6


def check_after_kill(out) -> tuple[int, int] | None:
    """Invariants of a store left by a killed run; returns (shards done, shards planned)."""
    if not (out / "manifest.json").exists():
        return None  # killed before the first manifest: nothing recorded, nothing lost
    manifest = json.loads((out / "manifest.json").read_text())  # never half-written
    store = FeatureStore(out, manifest)
    for record in manifest["shards"]:  # every recorded shard is complete and verifies
        store._check_file(record["file"], record["sha256"])
    starts = [r["start"] for r in manifest["shards"]]
    assert len(starts) == len(set(starts))  # no row recorded twice
    return len(manifest["shards"]), manifest["num_shards"]


def test_sigkill_extract_repeatedly_then_resume_equals_uninterrupted(
    tmp_path, fork_server, tiny_rm_dir, reference_store
):
    out = tmp_path / "killed"
    argv = extract_argv(tiny_rm_dir, reference_store["data"], out)
    rng = random.Random(8)
    t_ref = reference_store["seconds"]
    kills, partial, attempts = 0, 0, 0
    while kills < KILLS and attempts < 3 * KILLS:
        attempts += 1
        delay = rng.uniform(0.1, 0.7) * t_ref
        pid = fork_server.run(argv, tmp_path / f"log-{attempts}.txt")
        time.sleep(delay)
        fork_server.kill(pid)
        code = fork_server.wait(pid)
        state = check_after_kill(out)
        if code == -signal.SIGKILL:
            kills += 1
            partial += state is not None and 0 < state[0] < state[1]
        else:  # it finished before the kill: must be a clean exit
            assert code == 0, (tmp_path / f"log-{attempts}.txt").read_text()
    print(f"reference run {t_ref:.2f} s, {attempts} attempts, {partial} partial")
    assert kills >= 5
    assert partial >= 1  # at least one kill landed mid-extraction (resume was exercised)
    _report.count("faults: SIGKILL ebrm extract", "killed then resumed", kills)

    pid = fork_server.run(argv, tmp_path / "final.txt")
    assert fork_server.wait(pid) == 0, (tmp_path / "final.txt").read_text()
    resumed = FeatureStore.open(out)
    covered = [r for s in resumed.manifest["shards"] for r in range(s["start"], s["end"])]
    assert covered == list(range(resumed.num_rows))  # every row exactly once
    assert sorted(p.name for p in out.glob("shard-*")) == sorted(
        s["file"] for s in resumed.manifest["shards"]
    )
    assert not [p.name for p in out.iterdir() if p.name.endswith(".tmp")]  # temp files cleaned
    got, want = load_features(out), load_features(reference_store["store"])
    for name in ("embeddings", "rewards", "chosen", "rejected"):
        assert torch.equal(getattr(got, name), getattr(want, name)), name
    assert resumed.pair_info() == FeatureStore.open(reference_store["store"]).pair_info()
