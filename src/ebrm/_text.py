"""Small helpers for messages people read."""

from __future__ import annotations


def plural(n: int, noun: str, nouns: str | None = None) -> str:
    """'1 pair', '2 pairs', '1,812 pairs' (`nouns` for irregular plurals)."""
    return f"{n:,} {noun if n == 1 else (nouns or noun + 's')}"
