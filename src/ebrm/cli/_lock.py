"""A command's one-line hold on its output: `lock_output(out)` (see `ebrm._lock`).

The lock is entered into the running command's click context, which closes it when the
command returns, raises or is interrupted, so a command takes it with one call and no
re-indented body. Only the standard library and typer are imported: a second writer is
refused before torch loads.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from ebrm._lock import output_lock

try:  # typer >= 0.29 ships its own copy of click
    from typer._click.globals import get_current_context
except ImportError:  # pragma: no cover - older typer uses click itself
    from click import get_current_context

logger = logging.getLogger(__name__)


def lock_output(out: str | Path, flag: str = "--out") -> None:
    """Hold the lock of `out` until the current command ends; refuse if another writer has it.

    Under `accelerate launch`/`torchrun` (WORLD_SIZE > 1) the processes of one job write one
    output together: rank 0 holds the lock for all of them.

    Raises:
        OutputLockedError: another live process is writing `out` (exit 2, one line).
    """
    if int(os.environ.get("WORLD_SIZE", "1") or 1) > 1 and os.environ.get("RANK", "0") != "0":
        return
    ctx = get_current_context()
    try:
        ctx.with_resource(output_lock(out, flag=flag, command=ctx.command_path))
    except OSError as exc:
        # no lock file can be made beside `out` (its parent is a file, missing and not
        # creatable, or read-only): the command's own --out check, next, says so in one
        # line; an existing writable directory in a read-only parent is written unlocked
        logger.debug("%s %s: not locked (%s)", flag, out, exc)
