"""How a CLI run behaves around the commands: logging, third-party noise, signals."""

from __future__ import annotations

import contextlib
import logging
import math
import os
import signal
import sys
from collections.abc import Iterator

from ebrm.errors import Interrupted


class _OncePerMessage(logging.Filter):
    """Lets each distinct warning through once per run (the same text from a loop or from
    several stages is noise after the first time)."""

    def __init__(self) -> None:
        super().__init__()
        self._seen: set[tuple[str, str]] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        key = (record.name, record.getMessage())
        if key in self._seen:
            return False
        self._seen.add(key)
        return True


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever `sys.stderr` is at the time (tests and wrappers replace it)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:  # StreamHandler.__init__ assigns it
        pass


def configure_logging() -> None:
    """INFO messages as plain lines; each warning once; quiet third-party libraries.

    Environment defaults are set only where the user has not chosen: transformers logs
    errors only (its multi-line weight-loading reports and advice are not for our users),
    and off a terminal the Hugging Face progress bars are off and tqdm bars of other
    libraries redraw at most every 30 s.
    """
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    if not _isatty(sys.stderr):
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        os.environ.setdefault("TQDM_MININTERVAL", "30")
        if "transformers" in sys.modules:  # imported before us (tests, notebooks)
            sys.modules["transformers"].utils.logging.disable_progress_bar()
    root = logging.getLogger()
    if not any(getattr(h, "_ebrm", False) for h in root.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        handler.addFilter(_OncePerMessage())
        handler._ebrm = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    if root.level == logging.NOTSET or root.level > logging.INFO:
        root.setLevel(logging.INFO)
    for name in ("httpx", "urllib3", "filelock", "accelerate"):
        logging.getLogger(name).setLevel(logging.WARNING)
    logging.captureWarnings(True)


def thread_advice(*, load: float, threads: int, cpus: int) -> str | None:
    """A one-line warning when `threads` torch threads on top of the machine's load would
    oversubscribe its `cpus` (load + threads > cpus) and fewer threads would help; None
    otherwise.

    Oversubscribed torch threads wait on each other at every parallel region: a second torch
    process on a 2-core machine took `ebrm train` from ~15 to 1.2 steps/s.

    Args:
        load: what the other processes keep busy, e.g. the 1-minute load average.
        threads: the torch threads this command would use.
        cpus: the CPUs this process may run on.

    Example:
        >>> thread_advice(load=1.5, threads=2, cpus=2)[:40]
        'the machine is busy (load average 1.5 on'
    """
    if load + threads <= cpus or threads <= 1:
        return None
    suggested = max(1, math.floor(cpus - load))  # < threads, as load + threads > cpus
    return (
        f"the machine is busy (load average {load:.1f} on {cpus} CPUs) and torch would run "
        f"{threads} threads, so they wait on each other and this can run several times "
        f"slower; pass --threads {suggested} (or set EBRM_THREADS={suggested})"
    )


def use_threads(threads: int | None) -> int:
    """Set torch's CPU threads for this command (`--threads`, which also reads
    EBRM_THREADS; None keeps torch's default, which follows OMP_NUM_THREADS), warn in one
    line when they would oversubscribe a busy machine, and say the count in one line.

    Call it after the user-error checks: it imports torch.

    Returns:
        The number of torch threads in use.
    """
    import torch

    if threads is not None:
        torch.set_num_threads(threads)
    threads = torch.get_num_threads()
    cpus = _cpus()
    logger = logging.getLogger("ebrm.cli")
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):  # not on this platform: nothing to compare
        load = None
    if load is not None and (advice := thread_advice(load=load, threads=threads, cpus=cpus)):
        logger.warning(advice)
    logger.info("torch threads: %d on %d CPUs (--threads or EBRM_THREADS to change)", threads, cpus)
    return threads


def _cpus() -> int:
    """The CPUs this process may run on (its affinity, e.g. under taskset or a container)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _isatty(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


@contextlib.contextmanager
def interrupts_raise() -> Iterator[None]:
    """SIGINT and SIGTERM raise `Interrupted` in the main thread while the command runs.

    Long jobs catch it to save what they have and re-raise it with a line saying what was
    kept; `main` prints that line and exits 128 + the signal number.
    """

    def handler(signum, frame):  # noqa: ARG001 - the signal module's signature
        raise Interrupted("interrupted; rerun the same command to start again", signum=signum)

    previous = {}
    try:
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, handler)
    except ValueError:  # not the main thread (e.g. a test runner's worker): leave signals be
        pass
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
