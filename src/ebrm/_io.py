"""Atomic file writes: write to a temporary file beside the target, then rename.

A crash or a failed write leaves either the previous file or the new one, never a
half-written file.
"""

from __future__ import annotations

import glob
import hashlib
import json
import logging
import math
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any


def atomic_write(path: str | os.PathLike, write: Callable[[Path], None]) -> Path:
    """Call `write(tmp_path)` then atomically move `tmp_path` to `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        write(tmp_path)
        with open(tmp_path, "rb+") as handle:
            os.fsync(handle.fileno())
        # mkstemp creates 0600 files; artifacts should be readable like any other output
        os.chmod(tmp_path, 0o644)
        os.replace(tmp_path, path)
    except OSError as exc:
        tmp_path.unlink(missing_ok=True)
        if exc.errno is None:
            raise
        # name the user's path, never our temporary file
        raise type(exc)(exc.errno, exc.strerror or str(exc), str(path)) from exc
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise
    return path


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_bytes(data))


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    """JSON with sorted keys and indentation, ending in a newline."""
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def write_versioned_json(path: str | os.PathLike, obj: dict[str, Any]) -> Path:
    """Write a versioned JSON file atomically: sorted keys, 2-space indent, final newline.

    `obj` carries its own `format` and `format_version` fields; `read_versioned_json` is
    the reader. JSON has no NaN or infinity, so a non-finite float is refused (replace it
    with None first, e.g. with `json_finite`).

    Raises:
        ValueError: `obj` holds a non-finite float or a value JSON cannot hold.
    """
    text = json.dumps(obj, indent=2, sort_keys=True, allow_nan=False) + "\n"
    return atomic_write_text(path, text)


def read_versioned_json(
    path: str | os.PathLike, *, format_name: str, max_version: int, fix: str
) -> dict[str, Any]:
    """The JSON object in `path`, checked to be format `format_name`, version <= `max_version`.

    One reader for every versioned JSON file ebrm writes, so each fault raises the same
    error class whichever file it is in; every message names the file, the field and the
    fix. A file without `format_version` (none was ever written so) reads as version 0.

    Args:
        path: the file.
        format_name: the expected value of its `format` field.
        max_version: the newest `format_version` this ebrm reads.
        fix: what the user should do about a missing, damaged or foreign file, completing
            a sentence (e.g. "re-save the model with `ebrm train`").

    Raises:
        ArtifactFileMissingError: no file at `path`.
        ArtifactJSONError: not UTF-8 JSON, not an object, or `format_version` not an int.
        ArtifactFormatError: the `format` field is not `format_name`.
        ArtifactVersionError: `format_version` is newer than `max_version`.
    """
    from ebrm.errors import (
        ArtifactFileMissingError,
        ArtifactFormatError,
        ArtifactJSONError,
        ArtifactVersionError,
    )

    path = Path(path)
    if not path.is_file():
        raise ArtifactFileMissingError(f"{path} is missing; {fix}")
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArtifactJSONError(f"{path} is not valid JSON ({exc}); {fix}") from exc
    if not isinstance(obj, dict):
        raise ArtifactJSONError(
            f"{path} must hold a JSON object, got a {type(obj).__name__}; {fix}"
        )
    if obj.get("format") != format_name:
        kind = format_name.removeprefix("ebrm-").replace("-", " ")
        raise ArtifactFormatError(
            f"{path} is not an ebrm {kind} file: field 'format' is {obj.get('format')!r}, "
            f"expected {format_name!r}; {fix}"
        )
    version = obj.get("format_version", 0)
    if not isinstance(version, int) or isinstance(version, bool):
        raise ArtifactJSONError(
            f"{path}: field 'format_version' must be an int, got {version!r}; {fix}"
        )
    if version > max_version:
        raise ArtifactVersionError(
            f"{path}: field 'format_version' is {version} but this ebrm reads versions up to "
            f"{max_version}; upgrade ebrm (pip install -U ebrm)"
        )
    return obj


def sha256_file(path: str | os.PathLike, *, chunk_size: int = 1 << 22) -> str:
    """Hex sha256 of a file, read in chunks (model and shard files can be large)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def json_finite(obj: Any) -> Any:
    """`obj` with every non-finite float (inf, nan: JSON has neither) replaced by None.

    Recurses into dicts, lists and tuples (tuples become lists).
    """
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: json_finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [json_finite(v) for v in obj]
    return obj


def swap_directory(new: str | os.PathLike, target: str | os.PathLike) -> Path:
    """Move the complete directory `new` to `target`, replacing what is there.

    A previous `target` stays untouched until `new` is in place: it is moved aside to
    `.<name>.old-*` first (put back if the second rename fails) and deleted only after.
    A kill between the two renames leaves it there, and `recover_replaced_directory`
    moves it back.
    """
    new, target = Path(new), Path(target)
    backup: Path | None = None
    if target.exists():
        backup = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
        backup.rmdir()
        os.replace(target, backup)
    try:
        os.replace(new, target)
    except BaseException:
        if backup is not None:
            os.replace(backup, target)  # put the previous one back
        raise
    if backup is not None:
        shutil.rmtree(backup, ignore_errors=True)
    return target


def recover_replaced_directory(path: str | os.PathLike) -> bool:
    """Undo a directory swap that was killed between its two renames.

    `swap_directory` moves the previous directory to `.<name>.old-*`
    and then the new one into place; a kill between the two leaves nothing at `path`.
    When `path` is missing and such a backup exists, the newest backup is moved back
    (the previous model: the save that was cut short never completed).

    Returns:
        True when a directory was recovered.
    """
    path = Path(path)
    if path.exists() or not path.parent.is_dir():
        return False
    backups = [p for p in path.parent.glob(f".{glob.escape(path.name)}.old-*") if p.is_dir()]
    if not backups:
        return False
    newest = max(backups, key=lambda p: p.stat().st_mtime)
    try:
        os.replace(newest, path)
    except OSError:
        return False
    logging.getLogger(__name__).warning(
        "recovered %s from an interrupted save (the previous version; the save that was "
        "cut short did not complete)",
        path,
    )
    return True


def read_json_object(path: Path) -> dict:
    """The JSON object in `path`, or {} when it is missing, unreadable or not an object."""
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}
