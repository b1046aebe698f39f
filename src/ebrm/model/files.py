"""The files of the refined-model directory (DESIGN §3 [contract]), each read and written here.

    config.json                 format "ebrm-refined-model": head, normaliser, refine
                                settings, base RM provenance, training info, versions and
                                the sha256 of energy_head.safetensors
    energy_head.safetensors     the energy head's state dict
    README.md                   the model card (`ebrm.model.card`), written, never read
    references.json             format "ebrm-references" (optional): each reference's kind
                                and settings, the base temperature, the fit report and the
                                sha256 of references.safetensors
    references.safetensors      the references' tensors

Both JSON files go through the one versioned-JSON reader/writer (`ebrm._io`), so a fault
raises the same error class in either: `ArtifactFileMissingError`, `ArtifactJSONError`,
`ArtifactFormatError`, `ArtifactVersionError`, and `ArtifactChecksumError` for a binary
file that does not match its recorded sha256. `replace_directory` swaps a complete new
directory in atomically.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ebrm._io import (
    atomic_write,
    read_versioned_json,
    sha256_file,
    swap_directory,
    write_versioned_json,
)
from ebrm.errors import (
    ArtifactChecksumError,
    ArtifactFileMissingError,
    ArtifactJSONError,
    ConfigError,
    CorruptArtifactError,
)
from ebrm.model.names import (
    CARD_NAME,
    CONFIG_NAME,
    FORMAT_NAME,
    REFERENCES_META,
    REFERENCES_TENSORS,
    WEIGHTS_NAME,
)
from ebrm.references.fit import ReferenceSet
from ebrm.references.serialize import from_parts, to_parts

logger = logging.getLogger(__name__)

OWN_FILES = (CONFIG_NAME, WEIGHTS_NAME, CARD_NAME, REFERENCES_META, REFERENCES_TENSORS)

FORMAT_VERSION = 1
REFERENCES_FORMAT = "ebrm-references"  # references.json
REFERENCES_VERSION = 1

_RESAVE = "the refined-model directory is incomplete or damaged: re-save or re-train it"
_NOT_OURS = "pass the directory written by `ebrm train` or save_pretrained, not the base RM's"
_REFIT = "re-run `ebrm train` to refit the references"


# ---- config.json ------------------------------------------------------------------------


def write_config(path: Path, config: dict[str, Any]) -> Path:
    """Write config.json (`config` carries format and format_version)."""
    return write_versioned_json(path, config)


def read_config(path: Path) -> dict[str, Any]:
    """config.json, checked to be a refined-model config this ebrm reads.

    Raises:
        ArtifactFileMissingError, ArtifactJSONError, ArtifactFormatError,
        ArtifactVersionError: see `ebrm._io.read_versioned_json`.
    """
    if not path.is_file():
        raise ArtifactFileMissingError(f"{path} is missing; {_RESAVE}")
    return read_versioned_json(
        path, format_name=FORMAT_NAME, max_version=FORMAT_VERSION, fix=_NOT_OURS
    )


# ---- energy_head.safetensors --------------------------------------------------------------


def save_weights(head: nn.Module, path: Path) -> str:
    """The head's state dict as safetensors (contiguous CPU tensors, no pickle); its sha256."""
    from safetensors.torch import save_file

    state = {k: v.detach().to("cpu").contiguous() for k, v in head.state_dict().items()}
    atomic_write(path, lambda tmp: save_file(state, str(tmp), metadata={"format": "pt"}))
    return sha256_file(path)


def load_weights(head: nn.Module, path: Path, *, sha256: str | None = None) -> None:
    """Load safetensors weights into `head` (strict), checked against `sha256` when given.

    Raises:
        ArtifactFileMissingError: the file is missing.
        ArtifactChecksumError: it does not match `sha256`.
        CorruptArtifactError: it is unreadable, does not fit the head or is not finite.
    """
    from safetensors.torch import load_file

    if not path.is_file():
        raise ArtifactFileMissingError(f"{path} is missing; {_RESAVE}")
    # the checksum catches a damaged file that would otherwise load as plausible weights
    if sha256 is not None and sha256_file(path) != sha256:
        raise ArtifactChecksumError(
            f"{path} fails its checksum ({CONFIG_NAME} field 'weights_sha256' records "
            f"{sha256[:12]}…); the file is damaged: re-save or re-train the model"
        )
    try:
        state = load_file(str(path))
    except Exception as exc:  # safetensors raises its own error types for damaged files
        raise CorruptArtifactError(f"{path} cannot be read as safetensors: {exc}") from exc
    try:
        head.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise CorruptArtifactError(
            f"{path} does not match the head described in {CONFIG_NAME}: {exc}"
        ) from exc
    if not all(torch.isfinite(t).all() for t in state.values()):
        raise CorruptArtifactError(f"{path} holds NaN or infinite weights")


# ---- references.json + references.safetensors -------------------------------------------


def save_references(directory: Path, refs: ReferenceSet) -> None:
    """Write the references (tensors first, then the JSON that names their sha256)."""
    from safetensors.torch import save_file

    state, fields = to_parts(refs)
    tensors_path = directory / REFERENCES_TENSORS
    atomic_write(tensors_path, lambda tmp: save_file(state, str(tmp), metadata={"format": "pt"}))
    meta = {
        "format": REFERENCES_FORMAT,
        "format_version": REFERENCES_VERSION,
        **fields,
        "tensors_sha256": sha256_file(tensors_path),
    }
    write_versioned_json(directory / REFERENCES_META, meta)


def load_references(directory: Path) -> ReferenceSet | None:
    """The references stored in `directory`; None when it has none (a model from before
    them, or saved without).

    Raises:
        ArtifactJSONError, ArtifactFormatError, ArtifactVersionError: references.json.
        ArtifactFileMissingError, ArtifactChecksumError: references.safetensors is missing
            or does not match the sha256 references.json records.
    """
    from safetensors.torch import load_file

    meta_path, tensors_path = directory / REFERENCES_META, directory / REFERENCES_TENSORS
    if not meta_path.is_file():
        return None
    meta = read_versioned_json(
        meta_path, format_name=REFERENCES_FORMAT, max_version=REFERENCES_VERSION, fix=_REFIT
    )
    if not tensors_path.is_file():
        raise ArtifactFileMissingError(f"{tensors_path} is missing; {_REFIT}")
    if sha256_file(tensors_path) != meta.get("tensors_sha256"):
        raise ArtifactChecksumError(
            f"{tensors_path} does not match the checksum in {meta_path} (field "
            f"'tensors_sha256'); the file is damaged: {_REFIT}"
        )
    try:
        return from_parts(load_file(str(tensors_path)), meta)
    except ValueError as exc:
        raise ArtifactJSONError(f"{meta_path}: {exc}; {_REFIT}") from exc


# ---- the directory --------------------------------------------------------------------------


def replace_directory(
    directory: str | os.PathLike, build: Callable[[Path], None], *, ours: Iterable[str]
) -> Path:
    """Build a directory in a temp dir beside `directory`, then swap it in.

    Until the new directory is complete the previous one stays untouched; a kill between
    the two renames below leaves the previous one at `.<name>.old-*`, which
    `ebrm._io.recover_replaced_directory` (run by every load) moves back. Files in the
    previous directory that `build` does not write (names not in `ours`, e.g. a training
    history the trainer put there) are carried over.

    Raises:
        ConfigError: `directory` exists and is not a directory.
    """
    target = Path(directory)
    if target.exists() and not target.is_dir():
        raise ConfigError(f"{target} exists and is not a directory; choose another output path")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    tmp.chmod(0o755)  # mkdtemp makes it private; the model directory is a normal one
    try:
        build(tmp)
        for entry in tmp.iterdir():
            entry.chmod(0o644)  # atomic_write's mkstemp leaves files private (0600)
        if target.exists():
            keep = set(ours)
            for entry in target.iterdir():
                if entry.name in keep or (tmp / entry.name).exists():
                    continue
                if entry.is_dir():
                    shutil.copytree(entry, tmp / entry.name)
                else:
                    shutil.copy2(entry, tmp / entry.name)
        swap_directory(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target
