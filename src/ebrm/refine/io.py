"""On-disk pieces of the refined-model directory: weights, config, atomic replacement."""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

import torch
from torch import nn

from ebrm._io import atomic_write, swap_directory
from ebrm.errors import ConfigError, CorruptArtifactError

logger = logging.getLogger(__name__)


def save_weights(head: nn.Module, path: Path) -> None:
    """The head's state dict as safetensors (contiguous CPU tensors, no pickle)."""
    from safetensors.torch import save_file

    state = {k: v.detach().to("cpu").contiguous() for k, v in head.state_dict().items()}
    atomic_write(path, lambda tmp: save_file(state, str(tmp), metadata={"format": "pt"}))


def load_weights(head: nn.Module, path: Path) -> None:
    """Load safetensors weights into `head` (strict).

    Raises:
        CorruptArtifactError: the file is missing, unreadable, or does not fit the head.
    """
    from safetensors.torch import load_file

    if not path.is_file():
        raise CorruptArtifactError(
            f"{path} is missing; the refined-model directory is incomplete (re-save it)"
        )
    try:
        state = load_file(str(path))
    except Exception as exc:  # safetensors raises its own error types for damaged files
        raise CorruptArtifactError(f"{path} cannot be read as safetensors: {exc}") from exc
    try:
        head.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise CorruptArtifactError(
            f"{path} does not match the head described in config.json: {exc}"
        ) from exc
    if not all(torch.isfinite(t).all() for t in state.values()):
        raise CorruptArtifactError(f"{path} holds NaN or infinite weights")


def read_config(path: Path) -> dict:
    """Parse config.json.

    Raises:
        CorruptArtifactError: missing, not UTF-8 JSON, or not an object (names the file).
    """
    if not path.is_file():
        raise CorruptArtifactError(
            f"{path} is missing; the refined-model directory is incomplete (re-save it)"
        )
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CorruptArtifactError(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(config, dict):
        raise CorruptArtifactError(f"{path} must hold a JSON object, got {type(config).__name__}")
    return config


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
