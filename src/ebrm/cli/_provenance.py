"""Inputs made by one base RM used together: refuse a mismatch naming both values."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ebrm.errors import IncompatibleArtifactError

# (what, key in a base-RM provenance dict): what must agree for embeddings to be comparable
_FIELDS = (
    ("weights hash", "weights_hash"),
    ("embedding size", "hidden_size"),
    ("max length", "max_length"),
    ("truncation side", "truncation_side"),
)


def check_same_base_rm(
    a: Mapping[str, Any], a_name: str, b: Mapping[str, Any], b_name: str, *, fix: str
) -> None:
    """`a` and `b` (base-RM provenance dicts) describe the same RM and extraction settings.

    A field recorded on only one side is not compared (older artifacts lack some).

    Raises:
        IncompatibleArtifactError: one line naming every differing field with both values
            and `fix`.
    """
    differ = [
        f"{what} {a.get(key)!r} vs {b.get(key)!r}"
        for what, key in _FIELDS
        if a.get(key) is not None and b.get(key) is not None and a.get(key) != b.get(key)
    ]
    if differ:
        raise IncompatibleArtifactError(
            f"{a_name} and {b_name} come from different base RMs or settings "
            f"({'; '.join(differ)}); {fix}"
        )
