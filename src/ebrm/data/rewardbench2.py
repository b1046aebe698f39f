"""RewardBench 2 rows (arXiv 2506.01937; allenai/reward-bench-2 on the hub).

A row is ``{"id", "prompt": str, "chosen": [str, ...], "rejected": [str, ...],
"num_correct": int, "subset": str}`` (plus fields such as ``num_incorrect``,
``total_completions`` and ``models`` that scoring does not need).
"""

from __future__ import annotations

from ebrm.data import _fields as F
from ebrm.data.types import Message, RewardBench2Item
from ebrm.errors import DataFormatError


def _completions(row: dict, side: str, location: str) -> tuple[str, ...]:
    value = F.field(row, side, location)
    if not isinstance(value, list) or not value:
        raise DataFormatError(
            f"{location}: field {side!r} must be a non-empty list of strings (RewardBench 2), "
            f"got {F.type_name(value)}" + (" of length 0." if value == [] else ".")
        )
    return tuple(F.string(v, f"{side}[{i}]", location) for i, v in enumerate(value))


def parse_rewardbench2(row: dict, location: str, default_id: str) -> RewardBench2Item:
    """One RewardBench 2 row; `num_correct` must equal the number of chosen completions."""
    prompt = F.field(row, "prompt", location)
    if isinstance(prompt, str):
        messages: tuple[Message, ...] = (("user", F.string(prompt, "prompt", location)),)
    else:
        messages = tuple(F.messages(prompt, "prompt", location))
    chosen = _completions(row, "chosen", location)
    rejected = _completions(row, "rejected", location)
    num_correct = row.get("num_correct", len(chosen))
    if isinstance(num_correct, bool) or not isinstance(num_correct, int):
        raise DataFormatError(
            f"{location}: field 'num_correct' must be an int, got {F.type_name(num_correct)}."
        )
    if num_correct != len(chosen):
        raise DataFormatError(
            f"{location}: 'num_correct' is {num_correct} but 'chosen' has {len(chosen)} "
            "completions; RewardBench 2 rows list exactly the correct completions in 'chosen'."
        )
    subset = F.subset(row, location)
    if not subset:
        raise DataFormatError(
            f"{location}: a RewardBench 2 row needs a 'subset' (e.g. 'Factuality', 'Ties')."
        )
    return RewardBench2Item(
        id=F.row_id(row, default_id),
        subset=subset,
        messages=messages,
        chosen=chosen,
        rejected=rejected,
        num_correct=num_correct,
    )
