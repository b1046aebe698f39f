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


# The settings an embedding or reward was computed with, recorded in every output
# (`metrics.json`, the score file's `.meta.json`, the feature store, the server's `/info`).
# Results do not depend on the padding side or the batch size (tests/rm/test_batch_invariance.py);
# they are recorded so that a reader can check it, and compare like with like.
COMPUTED_WITH = ("dtype", "max_length", "truncation_side", "padding_side", "batch_size")


def computed_with(source: Any, *, batch_size: int | None) -> dict[str, Any]:
    """{"dtype", "max_length", "truncation_side", "padding_side", "batch_size"}: the settings
    of `source` (a base-RM provenance dict, or the base RM itself: its attributes, read
    without hashing its weights) and the batch size it ran with. None where not recorded
    (older artifacts lack `padding_side`; stores before format 5 lack the batch size).

    Example:
        >>> computed_with({"dtype": "float32", "max_length": 512}, batch_size=16)["batch_size"]
        16
    """
    if isinstance(source, Mapping):
        record = {key: source.get(key) for key in COMPUTED_WITH[:-1]}
    else:
        record = {key: getattr(source, key, None) for key in COMPUTED_WITH[:-1]}
    if record["dtype"] is not None:  # torch.float32 -> "float32", as provenance records it
        record["dtype"] = str(record["dtype"]).removeprefix("torch.")
    return {**record, "batch_size": batch_size}
