"""RM-Bench rows: one prompt, 3 chosen and 3 rejected responses (concise, detailed, markdown)."""

from __future__ import annotations

from pathlib import Path

from ebrm.data import _fields as F
from ebrm.data.types import Conversation, Message, PreferencePair, RMBenchItem
from ebrm.errors import DataFormatError

# RM-Bench sub-domains; safety-refuse and safety-response pool into the "safety" domain.
RMBENCH_SUBSETS = ("chat", "code", "math", "safety-refuse", "safety-response")
# Source subsets (RewardBench names) seen in RM-Bench files, for rows without a domain field.
_RMBENCH_SOURCE_PREFIXES = (
    ("alpacaeval", "chat"),
    ("mt-bench", "chat"),
    ("llmbar", "chat"),
    ("hep-", "code"),
    ("math", "math"),
    ("xstest-should-respond", "safety-response"),
    ("xstest-should-refuse", "safety-refuse"),
    ("donotanswer", "safety-refuse"),
    ("refusals", "safety-refuse"),
)


def rmbench_subset(row: dict, location: str, source: str | None) -> str:
    """The RM-Bench sub-domain of a row: chat, code, math, safety-refuse or safety-response.

    Taken from, in order: the row's "domain" field (hub dataset), its "subset" field when that
    is a sub-domain name, the file name (e.g. "safety-response_filtered.json"), and finally
    the RewardBench source subset (e.g. "alpacaeval" -> chat).
    """
    candidates = [row.get("domain"), row.get("subset")]
    for value in candidates:
        if isinstance(value, str) and value.lower() in RMBENCH_SUBSETS:
            return value.lower()
    if source:
        stem = Path(source).name.lower()
        for name in sorted(RMBENCH_SUBSETS, key=len, reverse=True):
            if stem.startswith(name):
                return name
    subset = row.get("subset")
    if isinstance(subset, str):
        for prefix, name in _RMBENCH_SOURCE_PREFIXES:
            if subset.lower().startswith(prefix):
                return name
    raise DataFormatError(
        f"{location}: cannot tell the RM-Bench domain (domain={row.get('domain')!r}, "
        f"subset={row.get('subset')!r}). Add a 'domain' field with one of {RMBENCH_SUBSETS} "
        "or keep RM-Bench's file names (e.g. chat_filtered.json)."
    )


def parse_rmbench(
    row: dict, location: str, default_id: str, source: str | None = None
) -> RMBenchItem:
    prompt = F.field(row, "prompt", location)
    if isinstance(prompt, str):
        messages: tuple[Message, ...] = (("user", F.string(prompt, "prompt", location)),)
    else:
        messages = tuple(F.messages(prompt, "prompt", location))
    responses = {}
    for side in ("chosen", "rejected"):
        value = F.field(row, side, location)
        if not isinstance(value, list) or len(value) != 3:
            raise DataFormatError(
                f"{location}: field {side!r} must be a list of 3 strings (concise, detailed, "
                f"markdown), got {F.type_name(value)}"
                + (f" of length {len(value)}." if isinstance(value, list) else ".")
            )
        responses[side] = tuple(F.string(v, f"{side}[{i}]", location) for i, v in enumerate(value))
    subset = rmbench_subset(row, location, source)
    return RMBenchItem(
        id=F.row_id(row, default_id),
        domain="safety" if subset.startswith("safety") else subset,
        subset=subset,
        messages=messages,
        chosen=responses["chosen"],
        rejected=responses["rejected"],
    )


def rmbench_pairs(item: RMBenchItem) -> list[PreferencePair]:
    """The 9 pairs chosen[i] vs rejected[j] of one RM-Bench item (i, j = style index)."""
    return [
        PreferencePair(
            chosen=Conversation(messages=item.messages, response=item.chosen[i]),
            rejected=Conversation(messages=item.messages, response=item.rejected[j]),
            id=f"{item.id}:c{i}r{j}",
            subset=item.subset,
            meta={
                "layout": "rm-bench",
                "domain": item.domain,
                "chosen_style": i,
                "rejected_style": j,
                "rmbench_id": item.id,
            },
        )
        for i in range(3)
        for j in range(3)
    ]
