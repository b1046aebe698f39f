"""A fork server: pay the torch/transformers import once, then run `ebrm` commands in
forked children that a test can SIGKILL at any moment.

Starting a fresh Python that imports torch takes 5-10 s on a loaded 2-core machine; a
fork of a process that already imported everything takes milliseconds. The children run
the real CLI (`ebrm.cli.main(argv)`), so what a kill interrupts is exactly what a user's
`ebrm extract` / `ebrm train` run would be doing. The server itself never runs torch code
(no thread pool exists before the fork), nor a tqdm monitor thread, and every child uses
one thread, so children are bit-identical to each other.

Protocol (one JSON object per line on stdin, one reply per line on stdout):
    {"op": "run", "argv": [...], "log": PATH} -> {"pid": PID}
    {"op": "wait", "pid": PID}                -> {"returncode": RC}   (-9 when SIGKILLed)
    {"op": "warm", "argv": [...], "log": PATH} -> {"returncode": RC}  (runs in the server
        itself, single-threaded, so that transformers' and torch's lazy imports are done
        once; forking after single-threaded torch work is what DataLoader workers do too)
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _serve() -> None:  # runs in the server process
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.figure  # noqa: F401 - ebrm train plots its history
    import torch
    import transformers  # noqa: F401

    torch.set_num_threads(1)
    import tqdm.std

    # no tqdm monitor thread in the server: one that holds tqdm's lock at a fork leaves the
    # child waiting for it forever when it opens its first progress bar
    tqdm.std.tqdm.monitor_interval = 0
    import ebrm.cli  # noqa: F401 - registers every command
    import ebrm.energy.train  # noqa: F401
    import ebrm.features.extract  # noqa: F401
    import ebrm.model  # noqa: F401
    import ebrm.rm  # noqa: F401

    reply = sys.stdout
    print(json.dumps({"ready": True}), file=reply, flush=True)
    for line in sys.stdin:
        cmd = json.loads(line)
        if cmd["op"] == "run":
            others = [t.name for t in threading.enumerate() if t is not threading.main_thread()]
            if others:  # a lock one of them holds would hang the child: fail, never hang
                raise RuntimeError(f"fork server: threads {others} would be forked mid-lock")
            sys.stdout.flush()
            sys.stderr.flush()
            pid = os.fork()
            if pid == 0:
                _child(cmd["argv"], cmd["log"])
            print(json.dumps({"pid": pid}), file=reply, flush=True)
        elif cmd["op"] == "warm":  # run once in the server: every lazy import happens now
            from ebrm.cli import main

            with (
                open(cmd["log"], "a") as log,
                contextlib.redirect_stdout(log),
                contextlib.redirect_stderr(log),
            ):
                code = main(cmd["argv"])
            print(json.dumps({"returncode": code}), file=reply, flush=True)
        elif cmd["op"] == "wait":
            _, status = os.waitpid(cmd["pid"], 0)
            code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
            print(json.dumps({"returncode": code}), file=reply, flush=True)


def _child(argv: list[str], log: str) -> None:
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    code = 70
    try:
        from ebrm.cli import main

        code = main(argv)
    except BaseException:  # an uncaught exception is a bug: make it visible in the log
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


class ForkServer:
    """Client side: starts the server process and runs commands in its children."""

    def __init__(self) -> None:
        env = {
            **os.environ,
            "OMP_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
            "HF_HUB_OFFLINE": "1",
            "TOKENIZERS_PARALLELISM": "false",
            "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)]),
        }
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "from tests.reliability._forkserver import _serve; _serve()"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        ready = self.proc.stdout.readline()
        if not ready:
            raise RuntimeError("the fork server did not start")

    def _call(self, **cmd) -> dict:
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the fork server died")
        return json.loads(line)

    def run(self, argv: list[str], log: Path) -> int:
        """Start `ebrm <argv>` in a forked child; returns its pid."""
        return self._call(op="run", argv=[str(a) for a in argv], log=str(log))["pid"]

    def warm(self, argv: list[str], log: Path) -> int:
        """Run `ebrm <argv>` inside the server (imports everything it needs, once)."""
        return self._call(op="warm", argv=[str(a) for a in argv], log=str(log))["returncode"]

    def wait(self, pid: int) -> int:
        """Wait for a child; its exit status, or minus the signal that killed it."""
        return self._call(op="wait", pid=pid)["returncode"]

    def kill(self, pid: int) -> None:
        with contextlib.suppress(ProcessLookupError):  # already reaped
            os.kill(pid, signal.SIGKILL)

    def close(self) -> None:
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:  # pragma: no cover
            self.proc.kill()
            self.proc.wait()
