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
    """`None` means CUDA when available, else CPU."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ConfigError(
            f"Unknown device {device!r}; use e.g. 'cpu', 'cuda' or 'cuda:1'."
        ) from exc


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
