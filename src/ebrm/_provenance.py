"""Which base-RM provenance fields decide that two embeddings of a text are the same.

Standard library only: the CLI compares provenance before any heavy import.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# (what, key in a base-RM provenance dict): the RM and the settings it embedded with
EMBEDDING_SETTINGS = (
    ("weights hash", "weights_hash"),
    ("embedding size", "hidden_size"),
    ("compute dtype", "dtype"),
    ("max length", "max_length"),
    ("truncation side", "truncation_side"),
)


def provenance_differences(
    a: Mapping[str, Any],
    b: Mapping[str, Any],
    *,
    fields: tuple[tuple[str, str], ...] = EMBEDDING_SETTINGS,
    missing_differs: bool = True,
    template: str = "{what} {a!r} vs {b!r}",
) -> list[str]:
    """'max length 256 vs 512', ... for every field on which `a` and `b` differ.

    The one comparison of recorded settings: values are compared as strings (a dtype
    recorded as text equals the same dtype given as an object), in the order of `fields`.
    A field missing (None) on one side counts as different when `missing_differs` (nothing
    can be vouched for), else it is not compared (older artifacts lack some fields).

    Args:
        a, b: the two records (e.g. base-RM provenance dicts, or two manifests' settings).
        fields: (what, key) of every field to compare; `what` names it in the message.
        missing_differs: whether a field missing on one side differs.
        template: one difference's message, formatted with `what`, `key`, `a` and `b` (the
            two values).

    Example:
        >>> provenance_differences({"max_length": 256}, {"max_length": 512})
        ['max length 256 vs 512']
    """
    differ = []
    for what, key in fields:
        x, y = a.get(key), b.get(key)
        if not missing_differs and (x is None or y is None):
            continue
        if str(x) != str(y):
            differ.append(template.format(what=what, key=key, a=x, b=y))
    return differ
