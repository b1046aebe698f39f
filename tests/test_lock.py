"""`ebrm._lock`: one writer per output. A second process is refused with the holder's PID, a
lock left by a SIGKILLed process is taken over, and the lock goes away with its holder."""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ebrm import _lock
from ebrm._lock import LockHolder, OutputLockedError, acquire, lock_path, output_lock

ROOT = Path(__file__).resolve().parents[1]
HOLDER = """
import sys
from ebrm._lock import acquire
lock = acquire(sys.argv[1], command="ebrm holder")
print("held", flush=True)
sys.stdin.read()  # hold until the test closes our stdin (or kills us)
lock.release()
"""


def start_holder(out: Path) -> subprocess.Popen:
    """A separate process holding the lock of `out` until its stdin is closed."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(out)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_lock_file_sits_beside_the_output_whatever_its_spelling(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    want = tmp_path.resolve() / ".store.lock"
    assert lock_path("store") == lock_path("./store/") == lock_path(tmp_path / "store") == want
    assert lock_path(tmp_path / "scores.jsonl") == tmp_path.resolve() / ".scores.jsonl.lock"


def test_a_second_process_is_refused_naming_the_holders_pid(tmp_path):
    out = tmp_path / "store"
    holder = start_holder(out)
    try:
        with pytest.raises(OutputLockedError) as info:
            acquire(out, flag="--out")
        message = str(info.value)
        assert f"PID {holder.pid}" in message
        assert "`ebrm holder`" in message and "started " in message
        assert f"--out {out}" in message and "\n" not in message
    finally:
        holder.stdin.close()
        assert holder.wait(timeout=30) == 0
    # released: the next writer gets it, and a released lock leaves no file behind
    with output_lock(out) as lock:
        record = json.loads(lock.path.read_text())
        assert record["pid"] == os.getpid() and record["host"] == socket.gethostname()
    assert not lock_path(out).exists()


def test_a_lock_left_by_a_sigkilled_process_is_taken_over(tmp_path, caplog):
    out = tmp_path / "model"
    holder = start_holder(out)
    holder.kill()  # SIGKILL: no cleanup ran, the lock file still names it
    assert holder.wait(timeout=30) == -signal.SIGKILL
    assert json.loads(lock_path(out).read_text())["pid"] == holder.pid
    with caplog.at_level(logging.WARNING, logger="ebrm._lock"), output_lock(out):
        pass
    lines = [r.getMessage() for r in caplog.records if r.name == "ebrm._lock"]
    assert len(lines) == 1
    assert f"taking over the stale lock of PID {holder.pid}" in lines[0]
    assert not lock_path(out).exists()


def test_the_lock_is_released_when_the_block_raises(tmp_path):
    out = tmp_path / "scores.jsonl"
    for error in (ValueError("boom"), KeyboardInterrupt()):
        with pytest.raises(type(error)), output_lock(out):
            raise error
        assert not lock_path(out).exists()
        acquire(out).release()  # free again


def test_directories_made_for_the_lock_go_with_it_unless_the_output_was_written(tmp_path):
    with output_lock(tmp_path / "a" / "b" / "out"):
        assert (tmp_path / "a" / "b").is_dir()
    assert not (tmp_path / "a").exists()  # e.g. a command refused after taking the lock
    with output_lock(tmp_path / "a" / "b" / "out"):
        (tmp_path / "a" / "b" / "out").write_text("result\n")
    assert (tmp_path / "a" / "b" / "out").read_text() == "result\n"


def test_a_fresh_lock_from_another_host_is_refused_and_an_old_one_taken_over(tmp_path, caplog):
    # a network file system whose locks do not reach this host: only the record tells
    out = tmp_path / "store"
    record = {"pid": 4321, "host": "gpu-node-7", "command": "ebrm extract", "started": 1.0}
    path = lock_path(out)
    path.write_text(json.dumps(record))
    with pytest.raises(OutputLockedError, match=r"PID 4321 on host gpu-node-7") as info:
        acquire(out)
    assert f"delete {path}" in str(info.value)
    old = time.time() - _lock.OTHER_HOST_STALE_SECONDS - 60
    os.utime(path, (old, old))  # its holder stopped refreshing it
    with caplog.at_level(logging.WARNING, logger="ebrm._lock"), output_lock(out):
        pass
    assert "has not been refreshed for 16 min" in caplog.text


def test_without_kernel_locks_a_live_pid_on_this_host_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(_lock, "_flock", lambda fd: None)  # e.g. NFS mounted without locks
    out = tmp_path / "store"
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        record = {"pid": sleeper.pid, "host": socket.gethostname(), "started": time.time()}
        lock_path(out).write_text(json.dumps(record))
        with pytest.raises(OutputLockedError, match=f"PID {sleeper.pid}"):
            acquire(out)
    finally:
        sleeper.kill()
        sleeper.wait()
    acquire(out).release()  # its PID is gone now: taken over


def test_holder_record_parsing_tolerates_damage():
    assert LockHolder.parse("") is None and LockHolder.parse("[1]") is None
    got = LockHolder.parse('{"pid": true, "host": 3, "started": "x"}')
    assert got == LockHolder()
    assert got.describe() == "an unknown process"
