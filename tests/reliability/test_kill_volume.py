"""Kills at volume: every long-running command (extract, base-rm train, train, eval, demo)
SIGKILLed at seeded random moments, KILLS times in all, then rerun; the result equals an
uninterrupted run (every row once, the same weights, the same metrics), and the rerun takes
over the lock the killed run left.

Slow (about 10 minutes on 2 cores): `pytest -m slow tests/reliability/test_kill_volume.py -s`.
The count is printed and recorded in the reliability report (`_report`).
"""

from __future__ import annotations

import json
import random
import shutil
import signal
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from ebrm._lock import lock_path
from ebrm.features import FeatureStore, load_features
from tests.reliability import _report
from tests.reliability.conftest import extract_argv, write_pairs
from tests.reliability.test_kill_extract import check_after_kill
from tests.reliability.test_kill_train import assert_same_model, train_argv

pytestmark = pytest.mark.slow

# kills per command; 21 in all (the issue asks for >= 20)
KILLS = {"extract": 5, "base-rm train": 4, "train": 4, "eval": 4, "demo": 4}
TOTAL: dict[str, int] = {}


def _run(server, argv, log: Path) -> tuple[int, float]:
    started = time.perf_counter()
    code = server.wait(server.run(argv, log))
    return code, time.perf_counter() - started


def kill_repeatedly(
    server, argv, tmp_path, seconds, *, n, seed, tag, after_kill=None, resumes=False
) -> int:
    """Start `argv` and SIGKILL it after a seeded random fraction of `seconds`, until `n`
    runs were killed (a run that finished first must have exited 0); then rerun it to the
    end. A command that `resumes` starts again from nothing after a run that finished, so
    the kills land anywhere in a whole run, not only in ever shorter remainders. Returns how
    many runs took over the lock a killed run left."""
    rng = random.Random(seed)
    kills = takeovers = attempts = 0
    out = Path(argv[argv.index("--out") + 1])
    while kills < n and attempts < 3 * n:
        attempts += 1
        log = tmp_path / f"{tag}-{attempts}.txt"
        pid = server.run(argv, log)
        time.sleep(rng.uniform(0.05, 0.95) * seconds)
        server.kill(pid)
        code = server.wait(pid)
        assert code in (0, -signal.SIGKILL), log.read_text()
        takeovers += "taking over the stale lock" in log.read_text()
        if code == -signal.SIGKILL:
            kills += 1
            if after_kill is not None:
                after_kill(out)
        elif resumes:
            shutil.rmtree(out)
    assert kills == n, f"{tag}: only {kills} of {attempts} runs were killed before finishing"
    log = tmp_path / f"{tag}-final.txt"
    assert server.wait(server.run(argv, log)) == 0, log.read_text()
    takeovers += "taking over the stale lock" in log.read_text()
    assert not lock_path(out).exists()  # released at the end
    TOTAL[tag] = kills
    _report.count(f"faults: SIGKILL ebrm {tag} (kills at volume)", "killed then rerun", kills)
    print(f"{tag}: {kills} kills in {attempts} runs, {takeovers} stale locks taken over")
    return takeovers


def _same_store(got: Path, want: Path) -> None:
    store = FeatureStore.open(got)
    covered = [r for s in store.manifest["shards"] for r in range(s["start"], s["end"])]
    assert covered == list(range(store.num_rows))  # every row exactly once
    a, b = load_features(got), load_features(want)
    for name in ("embeddings", "rewards", "chosen", "rejected"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name


def _json(path: Path, root: Path) -> object:
    """A JSON file with its run directory's path replaced (runs live in different dirs)."""
    return json.loads(path.read_text().replace(str(root), "<out>"))


@pytest.fixture(scope="module")
def pairs(tmp_path_factory) -> Path:
    return write_pairs(tmp_path_factory.mktemp("volume-data") / "pairs.jsonl", 40)


def test_kill_extract_at_volume(tmp_path, fork_server, tiny_rm_dir, reference_store):
    argv = extract_argv(tiny_rm_dir, reference_store["data"], tmp_path / "store")
    takeovers = kill_repeatedly(
        fork_server, argv, tmp_path, reference_store["seconds"], n=KILLS["extract"], seed=24,
        tag="extract", after_kill=check_after_kill, resumes=True,
    )  # fmt: skip
    _same_store(tmp_path / "store", reference_store["store"])
    assert takeovers >= 1


def base_rm_argv(model, data, out) -> list:
    return ["base-rm", "train", "--model", model, "--data", data, "--out", out,
            "--freeze-encoder", "--epochs", "2", "--seed", "0", "--device", "cpu",
            "--no-progress", "--overwrite"]  # fmt: skip


def test_kill_base_rm_train_at_volume(tmp_path, fork_server, tiny_bert_rm_dir, pairs):
    ref = tmp_path / "reference"
    code, seconds = _run(fork_server, base_rm_argv(tiny_bert_rm_dir, pairs, ref), tmp_path / "r")
    assert code == 0, (tmp_path / "r").read_text()
    out = tmp_path / "rm"

    def complete_or_absent(path: Path) -> None:
        if path.exists():  # swapped in whole, never half a directory
            assert (path / "model.safetensors").is_file() and (path / "config.json").is_file()

    kill_repeatedly(
        fork_server, base_rm_argv(tiny_bert_rm_dir, pairs, out), tmp_path, seconds,
        n=KILLS["base-rm train"], seed=25, tag="base-rm train", after_kill=complete_or_absent,
    )  # fmt: skip
    got, want = load_file(out / "model.safetensors"), load_file(ref / "model.safetensors")
    assert got.keys() == want.keys()
    for name in want:
        assert torch.equal(got[name], want[name]), name
    _same_store(out / "features", ref / "features")


@pytest.fixture(scope="module")
def trained(tmp_path_factory, fork_server, reference_store):
    """An uninterrupted `ebrm train` on the reference store, and how long it took."""
    from ebrm.model import EnergyRewardModel

    root = tmp_path_factory.mktemp("volume-model")
    code, seconds = _run(
        fork_server, train_argv(reference_store["store"], root / "model"), root / "log.txt"
    )
    assert code == 0, (root / "log.txt").read_text()
    return root / "model", EnergyRewardModel.from_pretrained(root / "model", device="cpu"), seconds


def test_kill_train_at_volume(tmp_path, fork_server, reference_store, trained):
    _, reference, seconds = trained
    out = tmp_path / "model"

    def absent_or_same(path: Path) -> None:
        if path.exists():
            assert_same_model(path, reference)

    kill_repeatedly(
        fork_server, train_argv(reference_store["store"], out), tmp_path, seconds,
        n=KILLS["train"], seed=26, tag="train", after_kill=absent_or_same,
    )  # fmt: skip
    assert_same_model(out, reference)


def eval_argv(model, data, out) -> list:
    return ["eval", "--model", model, "--benchmark", "pairwise", "--data", data, "--out", out,
            "--n-boot", "200", "--device", "cpu", "--no-progress", "--overwrite"]  # fmt: skip


def test_kill_eval_at_volume(tmp_path, fork_server, reference_store, trained):
    model, _, _ = trained
    data = reference_store["data"]
    ref = tmp_path / "reference"
    code, seconds = _run(fork_server, eval_argv(model, data, ref), tmp_path / "r")
    assert code == 0, (tmp_path / "r").read_text()
    examples = sorted(p.name for p in ref.glob("examples-*.jsonl"))
    out = tmp_path / "eval"

    def finished_or_no_metrics(path: Path) -> None:
        if (path / "metrics.json").exists():  # the mark of a finished report: all of it there
            json.loads((path / "metrics.json").read_text())
            assert (path / "report.md").is_file()
            assert sorted(p.name for p in path.glob("examples-*.jsonl")) == examples

    kill_repeatedly(
        fork_server, eval_argv(model, data, out), tmp_path, seconds, n=KILLS["eval"], seed=27,
        tag="eval", after_kill=finished_or_no_metrics,
    )  # fmt: skip
    assert _json(out / "metrics.json", out) == _json(ref / "metrics.json", ref)
    for name in examples:
        assert (out / name).read_bytes() == (ref / name).read_bytes(), name


def demo_argv(out, data, base_model) -> list:
    return ["demo", "--out", out, "--data", data, "--base-model", base_model, "--device", "cpu",
            "--no-progress"]  # fmt: skip


def test_kill_demo_at_volume(tmp_path, fork_server, tiny_bert_rm_dir, pairs):
    ref = tmp_path / "reference"
    code, seconds = _run(fork_server, demo_argv(ref, pairs, tiny_bert_rm_dir), tmp_path / "r")
    assert code == 0, (tmp_path / "r").read_text()
    out = tmp_path / "demo"
    kill_repeatedly(
        fork_server, demo_argv(out, pairs, tiny_bert_rm_dir), tmp_path, seconds,
        n=KILLS["demo"], seed=28, tag="demo", resumes=True,
    )  # fmt: skip
    _same_store(out / "features", ref / "features")
    assert _json(out / "metrics.json", out) == _json(ref / "metrics.json", ref)
    assert _json(out / "scores.json", out) == _json(ref / "scores.json", ref)


def test_kills_at_volume_total():
    assert sum(KILLS.values()) >= 20
    if len(TOTAL) == len(KILLS):  # the whole module ran
        assert sum(TOTAL.values()) >= 20
    print(f"kills at volume: {sum(TOTAL.values())} kills then reruns ({TOTAL})")
