"""Every writing command takes the lock of its output: a second writer is refused in one
line naming the holder's PID (exit 2, before torch is imported), a stale lock is taken over,
and the lock is released when the command fails or is interrupted."""

from __future__ import annotations

import os
import signal

import pytest
from tests.cli.test_user_errors import ROOT, RUNNER, run_cli, world  # noqa: F401 - a fixture
from tests.test_lock import start_holder

from ebrm._lock import lock_path
from ebrm.cli import main
from ebrm.errors import Interrupted

# (command, argv with {placeholders}, the output it locks)
WRITERS = [
    ("extract", "extract --rm {rm} --data {pairs} --out {root}/s2", "{root}/s2"),
    ("base-rm train", "base-rm train --data {pairs} --out {root}/rm2", "{root}/rm2"),
    ("base-rm train --features-out", "base-rm train --data {pairs} --out {root}/rm3 "
     "--features-out {root}/f3", "{root}/f3"),
    ("train", "train --features {store} --out {root}/m2", "{root}/m2"),
    ("eval", "eval --model {model} --benchmark pairwise --data {pairs} --out {root}/e",
     "{root}/e"),
    ("score", "score --model {model} --features {store} --out {root}/s.jsonl",
     "{root}/s.jsonl"),
    ("bon", "bon --model {model} --candidates {cands} --out {root}/b.jsonl", "{root}/b.jsonl"),
    ("demo", "demo --out {root}/d", "{root}/d"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "argv", "locked"), WRITERS, ids=[w[0] for w in WRITERS])
def test_a_second_writer_is_refused_naming_the_holder(case, argv, locked, world, tmp_path):  # noqa: F811
    names = {"root": world["root"], "rm": world["rm"], "model": world["root"] / "model",
             "store": world["root"] / "store", "pairs": world["root"] / "pairs.jsonl",
             "cands": world["root"] / "cands.jsonl"}  # fmt: skip
    holder = start_holder(locked.format(**names))
    try:
        proc, result = run_cli(argv.format(**names).split(), tmp_path)
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert result["code"] == 2, proc.stderr
    assert len(lines) == 1, proc.stderr
    assert f"is being written by PID {holder.pid} (`ebrm holder`, started" in lines[0]
    assert not result["torch"], "refused only after importing torch"
    assert not os.path.exists(locked.format(**names))


def _train(store, out) -> list[str]:
    return ["train", "--features", str(store), "--out", str(out), "--steps", "2",
            "--no-progress", "--device", "cpu", "--no-references"]  # fmt: skip


def test_a_stale_lock_of_a_killed_writer_is_taken_over(world, tmp_path, capsys):  # noqa: F811
    out = tmp_path / "model"
    holder = start_holder(out)
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=30)
    assert main(_train(world["root"] / "store", out)) == 0
    err = capsys.readouterr().err
    assert f"--out {out}: taking over the stale lock of PID {holder.pid}" in err
    assert (out / "config.json").is_file() and not lock_path(out).exists()


def test_the_lock_is_released_after_an_error_and_an_interrupt(world, tmp_path, monkeypatch):  # noqa: F811
    out = tmp_path / "model"
    store = world["root"] / "store"
    import ebrm.energy

    def fail(*args, **kwargs):
        raise ValueError("--validation-fraction leaves no validation pairs")  # any failure

    def interrupt(*args, **kwargs):
        raise Interrupted("interrupted", signum=signal.SIGINT)

    for stop, code in ((fail, None), (interrupt, 130)):
        monkeypatch.setattr(ebrm.energy, "train_energy_head", stop)
        if code is None:
            with pytest.raises(ValueError):
                main(_train(store, out))
        else:
            assert main(_train(store, out)) == code
        assert not lock_path(out).exists()
        holder = start_holder(out)  # another process can take it at once
        holder.stdin.close()
        assert holder.wait(timeout=30) == 0
