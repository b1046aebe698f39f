"""Preference data: loading every supported layout (and RM-Bench / RewardBench 2 rows), chat
formatting, the demo set, splits."""

from ebrm.data.demo import demo_pairs
from ebrm.data.pairs import (
    LoadReport,
    load_pairs,
    load_pairs_with_report,
    load_rewardbench2,
    load_rmbench,
)
from ebrm.data.split import prompt_hash, split_indices, split_pairs
from ebrm.data.template import format_conversation, render_plain
from ebrm.data.types import Conversation, PreferencePair, RewardBench2Item, RMBenchItem

__all__ = [
    "Conversation",
    "LoadReport",
    "PreferencePair",
    "RMBenchItem",
    "RewardBench2Item",
    "demo_pairs",
    "format_conversation",
    "load_pairs",
    "load_pairs_with_report",
    "load_rewardbench2",
    "load_rmbench",
    "prompt_hash",
    "render_plain",
    "split_indices",
    "split_pairs",
]
