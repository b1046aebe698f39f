"""Counts of what the reliability suite tried (faults injected, inputs fuzzed, outcomes).

Tests add to `COUNTS`; the conftest prints them after the run and, when the environment
variable EBRM_RELIABILITY_REPORT names a file, writes them there as JSON (the numbers in
docs/reliability.md come from that file).
"""

from __future__ import annotations

from collections import Counter, defaultdict

COUNTS: defaultdict[str, Counter] = defaultdict(Counter)


def count(target: str, outcome: str, n: int = 1) -> None:
    """Record `n` cases of `outcome` for `target` (e.g. "server /score", "422")."""
    COUNTS[target][outcome] += n


def as_dict() -> dict[str, dict[str, int]]:
    return {
        target: {"tried": sum(outcomes.values()), **dict(sorted(outcomes.items()))}
        for target, outcomes in sorted(COUNTS.items())
    }
