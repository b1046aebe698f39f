"""`ebrm train` SIGKILLed at seeded random moments. Training has no resume (a run takes
seconds to minutes on stored features), so the guarantees are: a kill never leaves a
half-written model directory (it is absent, the previous model, or complete), and a rerun
with the same seed gives exactly the model of an uninterrupted run."""

from __future__ import annotations

import random
import signal
import time

import pytest
import torch

from ebrm.model import EnergyRewardModel
from tests.reliability import _report


def train_argv(features, out) -> list:
    return [
        "train", "--features", features, "--out", out, "--steps", "10", "--seed", "3",
        "--no-progress", "--device", "cpu", "--overwrite",
    ]  # fmt: skip


def assert_same_model(path, reference) -> None:
    got = EnergyRewardModel.from_pretrained(path, device="cpu")
    for (name, a), (_, b) in zip(
        got.head.state_dict().items(), reference.head.state_dict().items(), strict=True
    ):
        assert torch.equal(a, b), name
    assert got.normalizer.to_dict() == reference.normalizer.to_dict()
    assert got.refine_config.to_dict() == reference.refine_config.to_dict()
    drop = lambda info: {k: v for k, v in info.items() if k != "seconds"}  # noqa: E731
    assert drop(got.train_info) == drop(reference.train_info)


@pytest.fixture(scope="module")
def reference_model(tmp_path_factory, fork_server, reference_store):
    root = tmp_path_factory.mktemp("reference-model")
    started = time.perf_counter()
    pid = fork_server.run(train_argv(reference_store["store"], root / "model"), root / "log.txt")
    assert fork_server.wait(pid) == 0, (root / "log.txt").read_text()
    seconds = time.perf_counter() - started
    return EnergyRewardModel.from_pretrained(root / "model", device="cpu"), seconds


def _kill_runs(fork_server, argv, tmp_path, seconds, rng, n, tag):
    """Start and SIGKILL `n` runs; yields after each kill (or clean finish)."""
    kills = 0
    for attempt in range(3 * n):
        if kills >= n:
            break
        log = tmp_path / f"{tag}-{attempt}.txt"
        pid = fork_server.run(argv, log)
        time.sleep(rng.uniform(0.05, 1.0) * seconds)
        fork_server.kill(pid)
        code = fork_server.wait(pid)
        assert code in (0, -signal.SIGKILL), log.read_text()
        kills += code == -signal.SIGKILL
        yield code
    assert kills >= n


def test_sigkill_train_never_leaves_half_a_model_and_rerun_equals_uninterrupted(
    tmp_path, fork_server, reference_store, reference_model
):
    reference, seconds = reference_model
    out = tmp_path / "model"
    argv = train_argv(reference_store["store"], out)
    rng = random.Random(11)
    outcomes = {"absent": 0, "complete": 0}
    # 1. no model yet: after every kill the directory is absent or a complete model
    for _ in _kill_runs(fork_server, argv, tmp_path, seconds, rng, 4, "fresh"):
        if out.exists():
            assert_same_model(out, reference)  # complete, and the same seed gives the same
            outcomes["complete"] += 1
        else:
            outcomes["absent"] += 1
    pid = fork_server.run(argv, tmp_path / "rerun.txt")
    assert fork_server.wait(pid) == 0, (tmp_path / "rerun.txt").read_text()
    assert_same_model(out, reference)
    # 2. a model exists: a killed retrain leaves the previous model or the new one
    kills = 4
    for _ in _kill_runs(fork_server, argv, tmp_path, seconds, rng, 2, "over"):
        assert_same_model(out, reference)
        kills += 1
    _report.count("faults: SIGKILL ebrm train", "killed (model absent or complete)", kills)
