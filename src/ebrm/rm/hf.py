"""Loading an HF sequence-classification RM, and what identifies its weights.

`load_reward_model` reads a local directory or hub id; `weights_hash` is the sha256 that
every artifact records as the base RM's identity (of the safetensors files, streamed, or of
the state dict when there are none).
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from ebrm._device import resolve_device, resolve_dtype
from ebrm.errors import ConfigError

logger = logging.getLogger(__name__)

_HASH_CHUNK = 1 << 20


def load_reward_model(
    name_or_path: str | os.PathLike,
    *,
    device: str | torch.device | None,
    dtype: str | torch.dtype,
    revision: str | None,
    trust_remote_code: bool,
) -> tuple[nn.Module, object, str]:
    """(model on `device`, tokenizer, resolved name) of a sequence-classification RM.

    A local directory's name is its resolved absolute path; a hub id is kept as given.

    Raises:
        ConfigError: the model cannot be loaded.
    """
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    torch_dtype = resolve_dtype(dtype)
    torch_device = resolve_device(device)
    local = Path(name_or_path).expanduser()
    name = str(local.resolve()) if local.is_dir() else str(name_or_path)
    kwargs = {"revision": revision, "trust_remote_code": trust_remote_code}
    try:
        tokenizer = AutoTokenizer.from_pretrained(name, **kwargs)
        model = AutoModelForSequenceClassification.from_pretrained(
            name, **_dtype_kwarg(torch_dtype), **kwargs
        )
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"Could not load a sequence-classification reward model from {name!r}: {exc}. "
            "Give a local HF model directory (config.json + weights + tokenizer) or a hub "
            "id (set HF_HUB_OFFLINE=0 to download)."
        ) from exc
    model.to(torch_device)
    return model, tokenizer, name


def weights_hash(name_or_path: str, revision: str | None, model: nn.Module) -> str:
    """sha256 of the model's safetensors files (streamed), else of its state dict."""
    files = _safetensors_files(name_or_path, revision)
    if files:
        return _hash_files(files)
    return _hash_state_dict(model.state_dict())


def clamp_to_positions(max_length: int, config, name_or_path: str) -> int:
    """Cap `max_length` at the model's position limit (BERT-style models crash past it)."""
    limit = getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", None)
    if isinstance(limit, int) and 0 < limit < max_length:
        logger.info(
            "max_length %d exceeds %s's %d positions; truncating texts to %d tokens",
            max_length,
            name_or_path,
            limit,
            limit,
        )
        return limit
    return max_length


def _dtype_kwarg(dtype: torch.dtype) -> dict:
    """transformers >= 4.56 calls it `dtype`; older versions only know `torch_dtype`."""
    import transformers
    from packaging.version import Version

    if Version(transformers.__version__) >= Version("4.56"):
        return {"dtype": dtype}
    return {"torch_dtype": dtype}


def _safetensors_files(name_or_path: str, revision: str | None) -> list[Path]:
    """The safetensors weight files of a local directory or a cached hub snapshot."""
    local = Path(name_or_path)
    if not local.is_dir():
        try:
            from huggingface_hub import snapshot_download

            local = Path(
                snapshot_download(
                    name_or_path,
                    revision=revision,
                    local_files_only=True,
                    allow_patterns=["*.safetensors"],
                )
            )
        except Exception:  # not cached or not a hub id: fall back to the state dict
            return []
    return sorted(local.glob("*.safetensors"))


def _hash_files(files: Sequence[Path]) -> str:
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.name.encode() + b"\0")
        with open(path, "rb") as handle:
            while chunk := handle.read(_HASH_CHUNK):
                digest.update(chunk)
    return digest.hexdigest()


def _hash_state_dict(state: dict[str, torch.Tensor]) -> str:
    digest = hashlib.sha256()
    for name in sorted(state):
        tensor = state[name].detach().cpu().contiguous()
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}\0".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()
