"""Base reward models: exact (embedding, reward) extraction and Bradley-Terry training."""

from ebrm.rm.adapter import BaseRewardModel
from ebrm.rm.pooling import find_score_head, last_non_pad_index

__all__ = ["BaseRewardModel", "find_score_head", "last_non_pad_index"]
