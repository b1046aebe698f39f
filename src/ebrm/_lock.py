"""One writer per output: an exclusive lock beside each `--out`, released however the
writer ends.

The lock of an output `DIR/NAME` (a directory or a file) is the file `DIR/.NAME.lock`: beside
the output, never inside it, so it survives the output being replaced by a rename, and it
names one output whatever spelling of the path (`./x`, `x/`, a symlinked parent) was given.

Liveness comes from the kernel: the holder keeps an `fcntl.flock` on the open lock file, and
the kernel drops it when the process ends in any way (exit, exception, Ctrl-C, SIGKILL). The
file's content, `{"pid", "host", "command", "started"}`, is only for messages and for the
one case the kernel cannot see: a holder on another host over a network file system whose
locks do not reach this host. That holder touches the file every `HEARTBEAT_SECONDS`; a lock
from another host not touched for `OTHER_HOST_STALE_SECONDS` is stale.

Why hand-written rather than the `filelock` package (a dependency of huggingface_hub and
torch): the refusal must name the holder (PID, host, command, start time), and a lock taken
over from a killed writer must say so; `filelock`'s `FileLock` records no holder in the
versions our dependencies allow (3.x), and either way we would write and read that record
ourselves around its `flock`.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ebrm.errors import ConfigError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: the content check below is all there is
    fcntl = None  # type: ignore[assignment]

logger = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 60.0
# a lock written on another host and not touched for this long is taken over: 15 missed
# heartbeats (a suspended or partitioned holder looks the same as a dead one after that)
OTHER_HOST_STALE_SECONDS = 15 * HEARTBEAT_SECONDS


class OutputLockedError(ConfigError):
    """Another live process is writing the same output (exit 2 from the CLI)."""


@dataclass(frozen=True)
class LockHolder:
    """Who wrote a lock file (read back for messages; any field may be missing)."""

    pid: int | None = None
    host: str | None = None
    command: str | None = None
    started: float | None = None

    @classmethod
    def parse(cls, text: str) -> LockHolder | None:
        """The holder recorded in `text`, or None for an empty or unreadable record."""
        try:
            obj = json.loads(text)
        except ValueError:
            return None
        if not isinstance(obj, dict):
            return None
        pid, started = obj.get("pid"), obj.get("started")
        return cls(
            pid=pid if isinstance(pid, int) and not isinstance(pid, bool) else None,
            host=obj.get("host") if isinstance(obj.get("host"), str) else None,
            command=obj.get("command") if isinstance(obj.get("command"), str) else None,
            started=float(started) if isinstance(started, (int, float)) else None,
        )

    def describe(self) -> str:
        """'PID 123 on host h (`ebrm extract`, started 2026-01-02 03:04:05 UTC)'."""
        text = f"PID {self.pid}" if self.pid is not None else "an unknown process"
        if self.host and self.host != socket.gethostname():
            text += f" on host {self.host}"
        details = [f"`{self.command}`"] if self.command else []
        if self.started is not None:
            stamp = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(self.started))
            details.append(f"started {stamp}")
        return text + (f" ({', '.join(details)})" if details else "")


def lock_path(out: str | os.PathLike) -> Path:
    """The lock file of output `out`: `.NAME.lock` beside it."""
    p = Path(out).expanduser()
    parent = p.parent.resolve()
    name = p.name or p.resolve().name  # "x/" and "x" are one output
    return parent / f".{name}.lock"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def _read(fd: int) -> str:
    os.lseek(fd, 0, os.SEEK_SET)
    chunks = []
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
    return b"".join(chunks).decode("utf-8", "replace")


class OutputLock:
    """An acquired output lock; `release()` (idempotent) gives it up and removes the file."""

    def __init__(self, path: Path, fd: int, out: Path, created: list[Path]) -> None:
        self.path, self.out, self._fd = path, out, fd
        self._created = created  # directories made for the lock file, deepest first
        self._stop = threading.Event()
        self._beat = threading.Thread(target=self._heartbeat, name="ebrm-lock", daemon=True)
        self._beat.start()

    def _heartbeat(self) -> None:
        while not self._stop.wait(HEARTBEAT_SECONDS):
            with contextlib.suppress(OSError):
                os.utime(self._fd)

    def release(self) -> None:
        if self._fd < 0:
            return
        self._stop.set()
        # unlink before unlocking: whoever opened the old file sees, once it holds the lock,
        # that the path no longer names its file and opens again (see `acquire`)
        with contextlib.suppress(OSError):
            if os.path.samestat(os.fstat(self._fd), os.stat(self.path)):
                os.unlink(self.path)
        os.close(self._fd)  # closing drops the flock
        self._fd = -1
        self._beat.join()  # no thread outlives the lock (a fork after this copies none)
        for directory in self._created:  # a refused or failed command leaves no empty dirs
            try:
                directory.rmdir()
            except OSError:  # not empty: the command wrote its output there
                break


def acquire(
    out: str | os.PathLike, *, flag: str = "--out", command: str | None = None
) -> OutputLock:
    """Lock output `out` for this process, or refuse.

    A lock left by a writer that died (SIGKILL, a crash, a reboot) is taken over with one
    logged line naming it.

    Args:
        out: the output directory or file.
        flag: the option that named it, for messages.
        command: what is writing it (e.g. "ebrm extract"), recorded for messages.

    Raises:
        OutputLockedError: another live process holds the lock; the message names its PID,
            host, command and start time, and the lock file.
    """
    path = lock_path(out)
    created = [d for d in (path.parent, *path.parent.parents) if not d.exists()]
    path.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(100):  # retried only when a releasing holder unlinked the file under us
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            kernel_lock = _flock(fd)
            if kernel_lock is False:
                holder = LockHolder.parse(_read(fd))
                raise _locked(out, flag, holder, path)
            now = _stat_or_none(path)
            if now is None or not os.path.samestat(os.fstat(fd), now):
                os.close(fd)  # the holder we waited for removed this file: open the new one
                continue
            previous = LockHolder.parse(_read(fd))
            if previous is not None:
                _check_stale(out, flag, path, fd, previous, kernel_lock=kernel_lock)
            record = {"pid": os.getpid(), "host": socket.gethostname(),
                      "command": command, "started": time.time()}  # fmt: skip
            os.ftruncate(fd, 0)
            os.lseek(fd, 0, os.SEEK_SET)
            os.write(fd, (json.dumps(record, sort_keys=True) + "\n").encode("utf-8"))
        except BaseException:
            with contextlib.suppress(OSError):
                os.close(fd)
            raise
        return OutputLock(path, fd, Path(out), created)
    raise OSError(errno.EAGAIN, "the lock file kept being replaced", str(path))  # pragma: no cover


def _stat_or_none(path: Path) -> os.stat_result | None:
    try:
        return os.stat(path)
    except FileNotFoundError:
        return None


def _flock(fd: int) -> bool | None:
    """True: locked; False: another open file holds it; None: no kernel locks here."""
    if fcntl is None:  # pragma: no cover
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    except OSError as exc:  # e.g. a network file system without locks
        if exc.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.EINVAL):
            return None
        raise
    return True


def _check_stale(
    out, flag: str, path: Path, fd: int, previous: LockHolder, *, kernel_lock: bool | None
) -> None:
    """Refuse a recorded holder that may be alive; otherwise say that its lock is taken over."""
    here = socket.gethostname()
    if previous.host in (None, here):
        # this host: with a kernel lock in hand its writer is gone, whatever its PID is now
        pid = previous.pid
        if kernel_lock is None and pid is not None and pid != os.getpid() and _pid_alive(pid):
            raise _locked(out, flag, previous, path)
        why = "it was stopped before it finished"
    else:
        age = time.time() - os.fstat(fd).st_mtime
        if age < OTHER_HOST_STALE_SECONDS:
            raise _locked(out, flag, previous, path)
        why = f"its lock on host {previous.host} has not been refreshed for {age / 60:.0f} min"
    logger.warning(
        "%s %s: taking over the stale lock of %s; %s", flag, out, previous.describe(), why
    )


def _locked(out, flag: str, holder: LockHolder | None, path: Path) -> OutputLockedError:
    who = holder.describe() if holder is not None else "another process"
    elsewhere = holder is not None and holder.host not in (None, socket.gethostname())
    gone = f" (if that job is gone, delete {path})" if elsewhere else ""
    return OutputLockedError(
        f"{flag} {out} is being written by {who}; wait for it to finish or choose another "
        f"{flag}{gone}."
    )


@contextlib.contextmanager
def output_lock(
    out: str | os.PathLike, *, flag: str = "--out", command: str | None = None
) -> Iterator[OutputLock]:
    """`acquire(out)` for the duration of a `with` block, released on exit, error or Ctrl-C.

    Example:
        >>> with output_lock(tmp / "store", command="ebrm extract"):  # doctest: +SKIP
        ...     write_the_store()
    """
    lock = acquire(out, flag=flag, command=command)
    try:
        yield lock
    finally:
        lock.release()
