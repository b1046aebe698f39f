"""Helpers that write small data files in every supported container format."""

from __future__ import annotations

import gzip
import json
from pathlib import Path


def write_rows(path: Path, rows: list) -> Path:
    """Write `rows` in the format given by the suffix of `path`."""
    name = path.name
    if name.endswith(".parquet"):
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist(rows), path)
    elif name.endswith(".jsonl.gz"):
        path.write_bytes(gzip.compress("".join(json.dumps(r) + "\n" for r in rows).encode()))
    elif name.endswith(".jsonl"):
        path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    elif name.endswith(".json.gz"):
        path.write_bytes(gzip.compress(json.dumps(rows).encode()))
    else:
        path.write_text(json.dumps(rows, indent=1), encoding="utf-8")
    return path
