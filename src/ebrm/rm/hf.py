"""Loading an HF sequence-classification RM, and what identifies its weights.

`load_reward_model` reads a local directory or hub id, on one device or (with a device map)
split across devices, CPU and disk by accelerate's big-model loading; `weights_hash` is the
sha256 that every artifact records as the base RM's identity (of the safetensors files,
streamed, or of the state dict when there are none), the same however the model is placed.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from ebrm._device import resolve_device, resolve_dtype
from ebrm.errors import ConfigError
from ebrm.rm.names import DEVICE_MAPS

logger = logging.getLogger(__name__)

_HASH_CHUNK = 1 << 20

# accelerate's automatic placements (`from_pretrained(device_map=...)`); a dict of module
# name -> device ("cpu", "disk", an int GPU index or a device string) places by hand.

DeviceMap = str | dict[str, int | str | torch.device]


def load_reward_model(
    name_or_path: str | os.PathLike,
    *,
    device: str | torch.device | None,
    dtype: str | torch.dtype,
    revision: str | None,
    trust_remote_code: bool,
    device_map: DeviceMap | None = None,
    max_memory: dict[int | str, int | str] | None = None,
    offload_folder: str | os.PathLike | None = None,
) -> tuple[nn.Module, object, str]:
    """(model on `device`, tokenizer, resolved name) of a sequence-classification RM.

    A local directory's name is its resolved absolute path; a hub id is kept as given.
    With `device_map` the model is not moved to `device`: accelerate places its layers
    (`max_memory` caps each device, e.g. {0: "20GiB", "cpu": "60GiB"}; layers placed on
    "disk" are written to `offload_folder` and read back per forward pass).

    Raises:
        ConfigError: the model cannot be loaded, or both `device` and `device_map` given.
    """
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    torch_dtype = resolve_dtype(dtype)
    placement: dict = {}
    if device_map is not None:
        placement = _placement(device, device_map, max_memory, offload_folder)
    else:
        if max_memory is not None or offload_folder is not None:
            raise ConfigError(
                "max_memory and offload_folder only apply with a device map; pass "
                "device_map='auto' too, or neither."
            )
        torch_device = resolve_device(device)
    local = Path(name_or_path).expanduser()
    name = str(local.resolve()) if local.is_dir() else str(name_or_path)
    kwargs = {"revision": revision, "trust_remote_code": trust_remote_code}
    try:
        tokenizer = AutoTokenizer.from_pretrained(name, **kwargs)
        model = AutoModelForSequenceClassification.from_pretrained(
            name, **_dtype_kwarg(torch_dtype), **kwargs, **placement
        )
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"Could not load a sequence-classification reward model from {name!r}: {exc}. "
            "Give a local HF model directory (config.json + weights + tokenizer) or a hub "
            "id (set HF_HUB_OFFLINE=0 to download)."
        ) from exc
    if not placement:
        model.to(torch_device)
    return model, tokenizer, name


def input_device(model: nn.Module, head: nn.Module) -> torch.device:
    """Where a batch's inputs go: the execution device of the input embedding when
    accelerate placed the model (its weights may be offloaded to CPU or disk), else the
    device of the score head (the whole model is on it)."""
    if getattr(model, "hf_device_map", None) is not None:
        hook = getattr(model.get_input_embeddings(), "_hf_hook", None)
        device = getattr(hook, "execution_device", None)
        if device is not None:
            return torch.device(device)
        return model.get_input_embeddings().weight.device
    return head.weight.device


def head_parameters(head: nn.Linear) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The score head's (weight, bias) as float32 CPU copies, also when accelerate has
    offloaded them to CPU or disk (their parameters then sit on the meta device)."""
    with _onloaded(head):
        weight = head.weight.detach().float().cpu()
        bias = None if head.bias is None else head.bias.detach().float().cpu()
    return weight, bias


def is_offloaded(module: nn.Module) -> bool:
    """accelerate keeps this module's weights on CPU or disk and loads them per call."""
    hook = getattr(module, "_hf_hook", None)
    return bool(getattr(hook, "offload", False))


def _onloaded(module: nn.Module):
    """A context in which an offloaded module's parameters are real CPU tensors (a
    module that is not offloaded is left alone: it may be in use on another thread)."""
    if not is_offloaded(module):
        return contextlib.nullcontext()
    from accelerate.utils.modeling import align_module_device

    return align_module_device(module, torch.device("cpu"))


def weights_hash(name_or_path: str, revision: str | None, model: nn.Module) -> str:
    """sha256 of the model's safetensors files (streamed), else of its state dict."""
    files = _safetensors_files(name_or_path, revision)
    if files:
        return _hash_files(files)
    return _hash_state_dict(_state_dict(model))


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


def _placement(device, device_map, max_memory, offload_folder) -> dict:
    """The `from_pretrained` keywords of accelerate's big-model loading, checked."""
    if device is not None:
        raise ConfigError(
            f"device={device!r} and device_map={device_map!r} contradict each other: a device "
            "map places the layers itself. Pass one of them."
        )
    if isinstance(device_map, str) and device_map not in DEVICE_MAPS:
        raise ConfigError(
            f"device_map={device_map!r} is not one of {', '.join(DEVICE_MAPS)}; pass one of "
            "them or a dict of module name -> device."
        )
    placement: dict = {"device_map": device_map}
    if max_memory is not None:
        placement["max_memory"] = max_memory
    if offload_folder is not None:
        placement["offload_folder"] = str(offload_folder)
    return placement


def _state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The model's state dict, with the tensors accelerate offloaded read back to CPU."""
    if getattr(model, "hf_device_map", None) is None:
        return model.state_dict()
    from accelerate.utils.modeling import get_state_dict_offloaded_model

    return get_state_dict_offloaded_model(model)


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
