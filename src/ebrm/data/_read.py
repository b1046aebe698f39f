"""Raw rows from local files and directories, with exact locations for error messages.

Local files are read with plain `json` / `gzip` / `pyarrow` rather than `datasets`: we want
every error to name the file and the exact line (JSONL) or item (JSON array, Parquet) that
caused it, and `datasets` reports neither. `datasets` is used only for `hf:` specs (hub.py).

Row numbering used in messages and default ids:
- JSONL: "line N", N = 1-based line number in the file (blank lines count but hold no row);
- JSON array and Parquet: "item N" / "row N", N = 0-based index.
"""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

from ebrm.errors import DataFormatError

SUPPORTED_SUFFIXES = (".jsonl.gz", ".json.gz", ".jsonl", ".json", ".parquet")


class RawRow(NamedTuple):
    """One undecoded row: where it came from and its JSON value."""

    location: str  # human-readable place for error messages, e.g. "data.jsonl, line 17"
    default_id: str  # id used when the row has none, e.g. "data.jsonl:17"
    data: Any


def suffix_of(path: Path) -> str | None:
    """The supported suffix `path` ends with (case-insensitive), or None."""
    name = path.name.lower()
    for suffix in SUPPORTED_SUFFIXES:
        if name.endswith(suffix):
            return suffix
    return None


def list_data_files(path: Path) -> list[Path]:
    """`path` itself if it is a file, else the supported files directly inside it, sorted.

    Raises:
        DataFormatError: missing path, unsupported suffix, or a directory without data files.
    """
    if path.is_file():
        if suffix_of(path) is None:
            raise DataFormatError(
                f"{path}: unsupported file type. Supported: {', '.join(SUPPORTED_SUFFIXES)}."
            )
        return [path]
    if path.is_dir():
        files = sorted(
            p
            for p in path.iterdir()
            if p.is_file() and not p.name.startswith(".") and suffix_of(p) is not None
        )
        if not files:
            found = sorted(p.name for p in path.iterdir())[:10]
            raise DataFormatError(
                f"{path}: directory holds no data files (found: {found or 'nothing'}). "
                f"Supported: {', '.join(SUPPORTED_SUFFIXES)}."
            )
        return files
    hint = ""
    if "/" in str(path) and not str(path).startswith((".", "/")):
        hint = f" If you meant a Hugging Face dataset, write hf:{path}."
    raise DataFormatError(f"{path}: no such file or directory.{hint}")


def iter_file_rows(path: Path) -> Iterator[RawRow]:
    """Yield the rows of one data file.

    Raises:
        DataFormatError: invalid gzip, UTF-8, JSON or Parquet, or a file without rows.
    """
    suffix = suffix_of(path)
    count = 0
    if suffix in (".jsonl", ".jsonl.gz"):
        rows = _iter_jsonl(path, gz=suffix.endswith(".gz"))
    elif suffix in (".json", ".json.gz"):
        rows = _iter_json(path, gz=suffix.endswith(".gz"))
    elif suffix == ".parquet":
        rows = _iter_parquet(path)
    else:  # list_data_files filters these out; kept for direct callers
        raise DataFormatError(f"{path}: unsupported file type.")
    for row in rows:
        count += 1
        yield row
    if count == 0:
        raise DataFormatError(f"{path}: the file is empty (no rows). Give a file with data.")


def _gzip_error(path: Path, exc: BaseException) -> DataFormatError:
    return DataFormatError(
        f"{path}: not a valid gzip file ({exc}). Re-create it with gzip or drop the .gz suffix."
    )


def _utf8_error(path: Path, line: int, exc: UnicodeDecodeError) -> DataFormatError:
    return DataFormatError(
        f"{path}, line {line}: invalid UTF-8 ({exc.reason} at byte {exc.start} of the line). "
        "Re-save the file as UTF-8."
    )


def _iter_jsonl(path: Path, *, gz: bool) -> Iterator[RawRow]:
    opener = gzip.open if gz else open
    try:
        with opener(path, "rb") as handle:
            for lineno, raw in enumerate(handle, 1):
                yield from _jsonl_line(path, lineno, raw)
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise _gzip_error(path, exc) from exc


def _jsonl_line(path: Path, lineno: int, raw: bytes) -> Iterator[RawRow]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _utf8_error(path, lineno, exc) from exc
    if lineno == 1:
        text = text.lstrip("\ufeff")
    if not text.strip():
        return
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataFormatError(
            f"{path}, line {lineno}: invalid JSON ({exc.msg} at column {exc.colno}). "
            "Each line of a JSONL file must be one complete JSON object."
        ) from exc
    except RecursionError as exc:
        raise DataFormatError(f"{path}, line {lineno}: JSON nested too deeply.") from exc
    yield RawRow(f"{path}, line {lineno}", f"{path.name}:{lineno}", data)


def _read_bytes(path: Path, *, gz: bool) -> bytes:
    if not gz:
        return path.read_bytes()
    try:
        return gzip.decompress(path.read_bytes())
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise _gzip_error(path, exc) from exc


def _iter_json(path: Path, *, gz: bool) -> Iterator[RawRow]:
    data = _read_bytes(path, gz=gz)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _utf8_error(path, data[: exc.start].count(b"\n") + 1, exc) from exc
    if not text.strip():
        raise DataFormatError(f"{path}: the file is empty (no rows). Give a file with data.")
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        if exc.msg == "Extra data" and text.lstrip().startswith("{"):
            # Many ".json" files are really JSON lines; read them as such.
            for lineno, line in enumerate(text.split("\n"), 1):
                yield from _jsonl_line(path, lineno, line.encode("utf-8"))
            return
        raise DataFormatError(
            f"{path}, line {exc.lineno}: invalid JSON ({exc.msg} at column {exc.colno})."
        ) from exc
    except RecursionError as exc:
        raise DataFormatError(f"{path}: JSON nested too deeply.") from exc
    where = ""
    if isinstance(obj, dict):
        obj, where = _rows_inside_object(path, obj)
    if not isinstance(obj, list):
        raise DataFormatError(
            f"{path}: top-level JSON is a {type(obj).__name__}; expected an array of rows "
            "(or an object holding one array of rows)."
        )
    for index, row in enumerate(obj):
        yield RawRow(f"{path}{where}, item {index}", f"{path.name}:{index}", row)


def _rows_inside_object(path: Path, obj: dict) -> tuple[Any, str]:
    """The rows of a JSON object: the object itself if it is one row, else its one list."""
    if "chosen" in obj and "rejected" in obj:
        return [obj], ""
    lists = [key for key, value in obj.items() if isinstance(value, list)]
    if len(lists) == 1:
        return obj[lists[0]], f" [{lists[0]!r}]"
    raise DataFormatError(
        f"{path}: top-level JSON object with keys {sorted(obj)[:10]} holds "
        f"{len(lists)} arrays; expected an array of rows or an object with exactly one array "
        "of rows inside."
    )


def _iter_parquet(path: Path) -> Iterator[RawRow]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
        index = 0
        for batch in parquet.iter_batches(batch_size=1024):
            for row in batch.to_pylist():
                yield RawRow(f"{path}, row {index}", f"{path.name}:{index}", row)
                index += 1
    except (pa.ArrowException, OSError) as exc:
        raise DataFormatError(f"{path}: cannot read Parquet ({exc}).") from exc
    except UnicodeDecodeError as exc:
        raise DataFormatError(f"{path}: invalid UTF-8 in a string column ({exc}).") from exc
