"""Progress bars that suit where the output goes.

On a terminal: an ordinary tqdm bar. Redirected to a file or a pipe: one plain line at
most every `EBRM_PROGRESS_SECONDS` seconds (default 30) instead of a bar redrawn many
times a second, so a log of a long run stays readable and small.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from tqdm.auto import tqdm as _tqdm

__all__ = ["tqdm", "line_seconds"]


def line_seconds() -> float:
    """Seconds between progress lines when the output is not a terminal."""
    try:
        return max(0.0, float(os.environ.get("EBRM_PROGRESS_SECONDS", "30")))
    except ValueError:
        return 30.0


class _Lines:
    """A stream that turns tqdm's carriage-return redraws into whole lines."""

    def __init__(self, stream) -> None:
        self._stream = stream

    def write(self, text: str) -> None:
        for part in text.split("\r"):
            part = part.strip()
            if part:
                self._stream.write(part + "\n")

    def flush(self) -> None:
        self._stream.flush()


class _LineTqdm(_tqdm):
    """A tqdm whose postfix and description updates wait for the next timed line (plain
    tqdm redraws at once on `set_postfix`, which off a terminal is a line per step)."""

    def set_postfix(self, ordered_dict=None, refresh=True, **kwargs):  # noqa: ARG002
        super().set_postfix(ordered_dict, refresh=False, **kwargs)

    def set_postfix_str(self, s="", refresh=True):  # noqa: ARG002
        super().set_postfix_str(s, refresh=False)

    def set_description(self, desc=None, refresh=True):  # noqa: ARG002
        super().set_description(desc, refresh=False)


def tqdm(iterable: Any = None, **kwargs: Any) -> _tqdm:
    """`tqdm.auto.tqdm(iterable, **kwargs)`, as lines every few seconds off a terminal."""
    stream = kwargs.get("file") or sys.stderr
    if kwargs.get("disable") or _isatty(stream):
        return _tqdm(iterable, **kwargs)
    seconds = line_seconds()
    kwargs.update(
        file=_Lines(stream), mininterval=seconds, maxinterval=seconds,
        ascii=True, ncols=100, dynamic_ncols=False,
    )  # fmt: skip
    return _LineTqdm(iterable, **kwargs)


def _isatty(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False
