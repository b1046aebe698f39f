"""Base reward models: exact (embedding, reward) extraction and Bradley-Terry training."""

from __future__ import annotations

import importlib
from typing import Any

# name -> module, imported on first use: the CLI reads this package's names and
# defaults (ebrm.cli) without importing torch
_EXPORTS = {
    "BaseRewardModel": "ebrm.rm.adapter",
    "find_score_head": "ebrm.rm.pooling",
    "last_non_pad_index": "ebrm.rm.pooling",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'ebrm.rm' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
