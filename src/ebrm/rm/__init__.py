"""Base reward models: exact (embedding, reward) extraction and Bradley-Terry training."""

from __future__ import annotations

from ebrm._lazy import lazy_getattr

# name -> module, imported on first use: the CLI reads this package's names and
# defaults (ebrm.cli) without importing torch
_EXPORTS = {
    "BaseRewardModel": "ebrm.rm.adapter",
    "find_score_head": "ebrm.rm.pooling",
    "last_non_pad_index": "ebrm.rm.pooling",
}
__all__ = sorted(_EXPORTS)


__getattr__ = lazy_getattr(__name__, _EXPORTS)
