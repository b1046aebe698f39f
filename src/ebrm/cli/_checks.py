"""Checks every command runs on its paths before any heavy import or work.

Each check raises `ConfigError` (exit 2, one line) naming the user's flag and path, what is
there and what was expected. Only the standard library and the library's torch-free name
modules (and `ebrm.model.base_rm`'s hub-cache lookup, torch-free too) are imported here: a
wrong path must be reported in a fraction of a second, not after torch and a model have
loaded.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from pathlib import Path

from ebrm._io import read_json_object as _read_json
from ebrm._io import recover_replaced_directory
from ebrm._text import plural  # noqa: F401 - re-exported for the commands
from ebrm.errors import ConfigError
from ebrm.features.names import FORMAT_NAME as FEATURE_STORE_FORMAT
from ebrm.features.names import MANIFEST_NAME
from ebrm.model.base_rm import missing_offline
from ebrm.model.names import CONFIG_NAME
from ebrm.model.names import FORMAT_NAME as EBRM_MODEL_FORMAT

MISSING = "missing"
FILE = "file"
EMPTY_DIR = "empty directory"
EBRM_MODEL = "ebrm model"
FEATURE_STORE = "feature store"
HF_MODEL = "HF model"
OTHER_DIR = "directory"

_DESCRIBE = {
    MISSING: "does not exist",
    FILE: "is a file",
    EMPTY_DIR: "is an empty directory",
    EBRM_MODEL: "is an ebrm refined-model directory (made by `ebrm train`)",
    FEATURE_STORE: "is a feature store (made by `ebrm extract`)",
    HF_MODEL: "is a Hugging Face model directory (a base RM)",
    OTHER_DIR: "is a directory that holds no model and no feature store",
}
_EXPECT = {
    EBRM_MODEL: "a refined-model directory made by `ebrm train`",
    FEATURE_STORE: "a feature store made by `ebrm extract`",
    HF_MODEL: "a Hugging Face sequence-classification model directory or hub id",
}
_HINT = {
    (EBRM_MODEL, FEATURE_STORE): "pass the --features store to `ebrm score`/`ebrm train` and "
    "the refined model from `ebrm train` as --model",
    (HF_MODEL, EBRM_MODEL): "a refined model records its base RM in config.json; pass the "
    "refined model instead, or refine this RM with `ebrm extract` + `ebrm train`",
    (EBRM_MODEL, HF_MODEL): "pass the base RM it was trained from (its config.json records "
    "base_rm), not the refined model",
    (FEATURE_STORE, HF_MODEL): "a feature store is extracted from a base RM; pass that RM "
    "(the store's manifest.json records base_rm)",
}
# "org/name" or "name": a hub id, not a local path
_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*(/[\w.-]+)?")


def artifact_kind(path: Path) -> str:
    """What is at `path`: one of the constants above (reads at most one small JSON file)."""
    if not path.exists():
        return MISSING
    if not path.is_dir():
        return FILE
    manifest = path / MANIFEST_NAME
    if manifest.is_file() and _read_json(manifest).get("format") == FEATURE_STORE_FORMAT:
        return FEATURE_STORE
    if (path / CONFIG_NAME).is_file():
        config = _read_json(path / CONFIG_NAME)
        if config.get("format") == EBRM_MODEL_FORMAT:
            return EBRM_MODEL
        if config.get("model_type") or config.get("architectures"):
            return HF_MODEL
    try:
        next(path.iterdir())
    except StopIteration:
        return EMPTY_DIR
    except OSError:
        pass
    return OTHER_DIR


def describe(kind: str) -> str:
    """'is a file', 'is a feature store (made by `ebrm extract`)', ..."""
    return _DESCRIBE[kind]


def need(path: str | Path, flag: str, expected: str) -> Path:
    """`path` holds the artifact `expected` (EBRM_MODEL, FEATURE_STORE or HF_MODEL).

    An HF model may also be a hub id (`org/name`) that is not a local path.
    """
    text = str(path)
    p = Path(text).expanduser()
    if expected in (EBRM_MODEL, HF_MODEL):
        recover_replaced_directory(p)  # a save killed between its two renames
    kind = artifact_kind(p)
    if kind == expected:
        return p
    if expected == HF_MODEL and kind == MISSING and _looks_like_hub_id(text):
        # `runs/rm` is a relative path as much as a hub id: offline, a hub id missing from
        # the cache cannot load, so say so now rather than after the data and torch load
        if missing_offline(text):
            raise ConfigError(
                f"{flag} {text} does not exist here, and as a hub id it is not in the local "
                "Hugging Face cache (HF_HUB_OFFLINE=1 forbids downloading it); pass an "
                "existing model directory, or unset HF_HUB_OFFLINE to download it."
            )
        return p
    if expected == HF_MODEL and kind == OTHER_DIR and not (p / "config.json").exists():
        raise ConfigError(
            f"{flag} {text} is a directory without config.json; expected {_EXPECT[expected]}."
        )
    hint = _HINT.get((kind, expected))
    raise ConfigError(
        f"{flag} {text} {_DESCRIBE[kind]}; expected {_EXPECT[expected]}"
        + (f" ({hint})." if hint else ".")
    )


def _looks_like_hub_id(text: str) -> bool:
    return (
        not text.startswith((".", "/", "~"))
        and os.sep not in text.replace("/", "", 1)
        and _HUB_ID.fullmatch(text) is not None
    )


def input_file(path: str | Path, flag: str, what: str) -> Path:
    """An existing regular file (`what` describes its content, e.g. 'a JSONL file')."""
    p = Path(path).expanduser()
    if p.is_file():
        return p
    state = "is a directory" if p.is_dir() else "does not exist"
    raise ConfigError(f"{flag} {path} {state}; expected {what}.")


def data_spec(spec: str, flag: str = "--data") -> str:
    """A local file/directory that exists, or an `hf:` spec (checked when loaded)."""
    if spec.startswith("hf:"):
        return spec
    if not Path(spec).expanduser().exists():
        raise ConfigError(
            f"{flag} {spec} does not exist; pass a local JSON/JSONL/JSONL.GZ/Parquet file or "
            "directory, or hf:NAME[:CONFIG][:SPLIT] for the hub."
        )
    return spec


def _writable_parent(p: Path, flag: str, raw: str | Path) -> None:
    """The nearest existing ancestor of `p` is a directory we may write into."""
    parent = p.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise ConfigError(f"{flag} {raw}: {parent} is a file, so nothing can be created below it.")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ConfigError(f"{flag} {raw}: {parent} is not writable; choose another location.")


def output_file(path: str | Path, flag: str, *, overwrite: bool) -> Path:
    """A file to (re)write: not a directory, its directory writable, an existing file only
    replaced with --overwrite."""
    p = Path(path).expanduser()
    if p.is_dir():
        example = p / f"{p.name}.jsonl"
        raise ConfigError(f"{flag} {path} is a directory; pass a file name, e.g. {example}.")
    if p.exists() and not overwrite:
        raise ConfigError(f"{flag} {path} already exists; pass --overwrite to replace it.")
    _writable_parent(p, flag, path)
    return p


def output_dir(
    path: str | Path,
    flag: str,
    *,
    overwrite: bool,
    replaces: str | None = None,
    result_file: str | None = None,
) -> Path:
    """A directory to write into: not a file, writable, and an earlier result in it only
    replaced with --overwrite.

    Args:
        replaces: the artifact kind this command writes (e.g. EBRM_MODEL): an existing one
            needs --overwrite, and any other non-empty content is refused (never deleted).
        result_file: for report directories, the file whose presence marks an earlier
            result (e.g. metrics.json); other files in the directory are left alone.
    """
    p = Path(path).expanduser()
    kind = artifact_kind(p)
    if kind == FILE:
        raise ConfigError(f"{flag} {path} is a file; pass a directory (created if missing).")
    if kind == MISSING:
        _writable_parent(p, flag, path)
        return p
    if not os.access(p, os.W_OK | os.X_OK):
        raise ConfigError(f"{flag} {path} is not writable; choose another directory.")
    if replaces is not None and kind not in (EMPTY_DIR, replaces):
        raise ConfigError(
            f"{flag} {path} {_DESCRIBE[kind]}, which this command does not replace; "
            "choose a new or empty directory."
        )
    exists = kind == replaces or (result_file is not None and (p / result_file).exists())
    if exists and not overwrite:
        raise ConfigError(f"{flag} {path} already holds a result; pass --overwrite to replace it.")
    return p


@contextlib.contextmanager
def flag_names(flags: dict[str, str]) -> Iterator[None]:
    """Re-raise a config's `ConfigError` with the user's flag names (`--lr`, not
    `learning_rate`): `flags` maps config field names to flags."""
    try:
        yield
    except ConfigError as exc:
        message = str(exc)
        for field, flag in flags.items():
            message = re.sub(rf"The '{field}' parameter of \w+ must", f"{flag} must", message)
            message = re.sub(rf"(?<![\w.-])(\w+Config\.)?'?{field}'?(?![\w])", flag, message)
        if message == str(exc):
            raise
        raise ConfigError(message) from exc
