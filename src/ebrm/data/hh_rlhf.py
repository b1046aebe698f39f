"""Anthropic HH-RLHF dialogues: ``"\\n\\nHuman: ...\\n\\nAssistant: ..."`` strings.

Text before the first turn marker becomes a system turn; the last ``"\\n\\nAssistant: "`` turn
is the response. Chosen and rejected keep their own turns, so the few pairs whose dialogues
differ before the response are kept and flagged (``meta["prompt_mismatch"]``).
"""

from __future__ import annotations

import re

from ebrm.data import _fields as F
from ebrm.data.types import Conversation, Message, PreferencePair
from ebrm.errors import DataFormatError

_HH_MARKER = re.compile(r"(?:\A|\n\n)(Human|Assistant):(?: |\Z)")


def split_hh_dialogue(text: str) -> tuple[tuple[Message, ...], str]:
    """Split an HH-RLHF dialogue into its turns before the response, and the response.

    Joining the result with the plain template (`ebrm.data.template.render_plain`) gives back
    `text` exactly when every turn marker is "\\n\\nHuman: " / "\\n\\nAssistant: " (as in the
    released data).

    Raises:
        ValueError: no turn markers, or the dialogue does not end with an assistant turn.
    """
    matches = list(_HH_MARKER.finditer(text))
    if not matches:
        raise ValueError("has no '\\n\\nHuman: ' / '\\n\\nAssistant: ' turns")
    turns: list[Message] = []
    if matches[0].start() > 0:
        turns.append(("system", text[: matches[0].start()]))
    for match, following in zip(matches, [*matches[1:], None], strict=True):
        end = following.start() if following is not None else len(text)
        role = "user" if match.group(1) == "Human" else "assistant"
        turns.append((role, text[match.end() : end]))
    if turns[-1][0] != "assistant":
        raise ValueError("does not end with an '\\n\\nAssistant: ' turn")
    return tuple(turns[:-1]), turns[-1][1]


def parse_hh_rlhf(row: dict, location: str, default_id: str) -> PreferencePair:
    sides = {}
    for side in ("chosen", "rejected"):
        text = F.string(F.field(row, side, location), side, location)
        try:
            messages, response = split_hh_dialogue(text)
        except ValueError as exc:
            raise DataFormatError(
                f"{location}: field {side!r} is not an HH-RLHF dialogue: it {exc}. "
                f"Starts with {text[:60]!r}."
            ) from exc
        sides[side] = Conversation(messages=messages, response=response)
    mismatch = sides["chosen"].messages != sides["rejected"].messages
    return PreferencePair(
        chosen=sides["chosen"],
        rejected=sides["rejected"],
        id=F.row_id(row, default_id),
        subset=F.subset(row, location),
        meta={"layout": "hh-rlhf", "prompt_mismatch": mismatch},
    )
