"""A reader polling an output while `ebrm` writes it never sees a partial artefact: a feature
store's manifest records only verified shards and loads only when complete, a model
directory is absent or loads, an eval report has metrics.json only once every file is there,
and a score or best-of-n file is absent or has every row."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from ebrm.errors import IncompatibleArtifactError
from ebrm.features import FeatureStore, load_features
from tests.reliability import _report
from tests.reliability.conftest import extract_argv
from tests.reliability.test_kill_extract import check_after_kill
from tests.reliability.test_kill_train import train_argv


def _running(pid: int) -> bool:
    """The child has not exited (the fork server reaps it only when asked to wait)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def poll_while_writing(server, argv, log: Path, read) -> Counter:
    """Run `argv` in the fork server and call `read()` as often as possible until it exits;
    returns how often `read` saw each state ("absent", "in progress", "complete")."""
    seen: Counter = Counter()
    pid = server.run(argv, log)
    while _running(pid):
        seen[read()] += 1
    assert server.wait(pid) == 0, log.read_text()
    seen[read()] += 1
    assert seen["complete"] >= 1 and seen["absent"] + seen["in progress"] >= 1, seen
    target = f"readers: polled while `ebrm {argv[0]}` wrote"
    for state, n in seen.items():
        _report.count(target, state, n)
    print(f"{argv[0]}: {dict(seen)}")
    return seen


@pytest.fixture(scope="module")
def model(tmp_path_factory, fork_server, reference_store) -> Path:
    root = tmp_path_factory.mktemp("readers-model")
    pid = fork_server.run(train_argv(reference_store["store"], root / "model"), root / "log")
    assert fork_server.wait(pid) == 0, (root / "log").read_text()
    return root / "model"


def test_a_feature_store_being_extracted(tmp_path, fork_server, tiny_rm_dir, reference_store):
    out = tmp_path / "store"
    rows = FeatureStore.open(reference_store["store"]).num_rows

    def read() -> str:
        if check_after_kill(out) is None:  # the manifest, whole, and every shard it records
            return "absent"
        store = FeatureStore.open(out)
        if not store.complete:
            with pytest.raises(IncompatibleArtifactError, match="incomplete"):
                store.load()
            return "in progress"
        assert load_features(out).rewards.shape[0] == rows
        return "complete"

    argv = extract_argv(tiny_rm_dir, reference_store["data"], out)
    seen = poll_while_writing(fork_server, argv, tmp_path / "log", read)
    assert seen["in progress"] >= 1


def test_a_model_being_trained(tmp_path, fork_server, reference_store):
    from ebrm.model import EnergyRewardModel

    out = tmp_path / "model"

    def read() -> str:
        if not out.exists():
            return "absent"
        EnergyRewardModel.from_pretrained(out, device="cpu")  # whole, or not there at all
        return "complete"

    argv = train_argv(reference_store["store"], out)
    poll_while_writing(fork_server, argv, tmp_path / "log", read)


def test_an_eval_report_being_written(tmp_path, fork_server, reference_store, model):
    out = tmp_path / "eval"

    def read() -> str:
        if not (out / "metrics.json").exists():
            return "absent"
        metrics = json.loads((out / "metrics.json").read_text())
        assert (out / "report.md").is_file()
        for name in metrics["rewards"]:
            lines = (out / f"examples-{name}.jsonl").read_text().splitlines()
            assert len(lines) == metrics["n"]
        return "complete"

    argv = ["eval", "--model", model, "--benchmark", "pairwise", "--data",
            reference_store["data"], "--out", out, "--n-boot", "200", "--device", "cpu",
            "--no-progress"]  # fmt: skip
    poll_while_writing(fork_server, argv, tmp_path / "log", read)


def _lines(path: Path, n: int) -> str:
    if not path.exists():
        return "absent"
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(rows) == n
    return "complete"


def test_scores_being_written(tmp_path, fork_server, reference_store, model):
    out = tmp_path / "scores.jsonl"
    rows = FeatureStore.open(reference_store["store"]).num_rows
    argv = ["score", "--model", model, "--features", reference_store["store"], "--out", out,
            "--device", "cpu", "--no-progress"]  # fmt: skip
    poll_while_writing(fork_server, argv, tmp_path / "log", lambda: _lines(out, rows))


def test_best_of_n_being_written(tmp_path, fork_server, model):
    candidates = tmp_path / "candidates.jsonl"
    with open(candidates, "w") as handle:
        for i in range(40):
            row = {"prompt": f"question {i}", "candidates": [f"answer {i} {k}" for k in range(4)]}
            handle.write(json.dumps(row) + "\n")
    out = tmp_path / "best.jsonl"
    argv = ["bon", "--model", model, "--candidates", candidates, "--out", out,
            "--device", "cpu"]  # fmt: skip
    poll_while_writing(fork_server, argv, tmp_path / "log", lambda: _lines(out, 40))
