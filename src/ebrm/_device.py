"""Device and dtype resolution (parameters, never global torch state)."""

from __future__ import annotations

import torch

from ebrm.errors import ConfigError

_DTYPES = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
    "float16": torch.float16,
    "fp16": torch.float16,
}


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """`None` means CUDA when available, else CPU.

    Raises:
        ConfigError: an unknown device, or one this machine does not have (checked here
            so that the user gets one line, not a traceback from deep inside torch).
    """
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ConfigError(
            f"Unknown device {device!r}; use e.g. 'cpu', 'cuda' or 'cuda:1'."
        ) from exc
    if resolved.type == "meta":
        raise ConfigError(f"Device {device!r} holds no data; use e.g. 'cpu' or 'cuda'.")
    backend = getattr(torch, resolved.type, None) if resolved.type != "cpu" else None
    if backend is not None and hasattr(backend, "is_available"):
        count = backend.device_count() if hasattr(backend, "device_count") else 1
        if not backend.is_available() or (resolved.index or 0) >= max(count, 1):
            raise ConfigError(
                f"Device {device!r} is not available on this machine "
                f"({count if backend.is_available() else 0} {resolved.type} device(s)); "
                "use 'cpu' or an existing device."
            )
    return resolved


def resolve_dtype(dtype: str | torch.dtype | None) -> torch.dtype:
    """Accepts torch dtypes or the names float32/bfloat16/float16 (and fp32/bf16/fp16)."""
    if dtype is None:
        return torch.float32
    if isinstance(dtype, torch.dtype):
        return dtype
    try:
        return _DTYPES[str(dtype).lower()]
    except KeyError:
        raise ConfigError(
            f"Unknown dtype {dtype!r}; choose one of float32, bfloat16, float16."
        ) from None
