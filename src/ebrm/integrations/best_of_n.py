"""Best-of-n: pick the best candidate per prompt (`ebrm bon`).

The unbiased estimator of a proxy's best-of-n gold reward lives in
`ebrm.evaluation.best_of_n`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ebrm._io import atomic_write_text
from ebrm.errors import DataFormatError
from ebrm.integrations._common import (
    Scorer,
    rewards_of,
    score_safely,
    to_conversation,
)
from ebrm.refine.kinds import resolve_reward
from ebrm.rm.names import DEFAULT_BATCH_SIZE

# ---- selecting the best candidate -------------------------------------------------------


def select_best(
    scorer: Scorer,
    rows: Sequence[dict[str, Any]],
    *,
    reward: str | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    mode: str | None = None,
) -> list[dict[str, Any]]:
    """Score every candidate of every row and pick the best per row.

    Args:
        rows: dicts with "prompt" (string or message list) and "candidates" (list of
            response strings); other keys are passed through.
        reward: the `RewardKind` to rank by (refined, mean, conservative, base, ...;
            default refined).
        mode: the deprecated name of `reward` (warns).

    Returns:
        The rows with "best_index", "best", "reward" (the kind ranked by), "rewards" (its
        value per candidate) and "scores" (each candidate's record, `RefinedRewards.to_records`:
        the fields `ebrm score` and the server write) added.
        Ties go to the earliest candidate.
    """
    reward = resolve_reward(reward, mode)
    convs, owners = [], []
    for r, row in enumerate(rows):
        for c, candidate in enumerate(row["candidates"]):
            convs.append(to_conversation(row["prompt"], candidate, f"row {r} candidate {c}"))
            owners.append(r)
    result = score_safely(scorer, convs, batch_size=batch_size) if convs else None
    rewards = rewards_of(result, reward) if result is not None else []
    records = result.to_records() if result is not None else []
    per_row: list[list[float]] = [[] for _ in rows]
    scores: list[list[dict]] = [[] for _ in rows]
    for owner, value, record in zip(owners, rewards, records, strict=True):
        per_row[owner].append(value)
        scores[owner].append(record)
    out = []
    for row, values, records in zip(rows, per_row, scores, strict=True):
        best = max(range(len(values)), key=lambda i: (values[i], -i))
        out.append({**row, "best_index": best, "best": row["candidates"][best], "reward": reward,
                    "rewards": values, "scores": records})  # fmt: skip
    return out


def read_candidates(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Read a JSONL file of {"prompt", "candidates": [...]} rows, validating each row."""
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(f"Candidates file {path} does not exist; pass a JSONL file.")
    rows = []
    with open(path, encoding="utf-8", errors="strict") as handle:
        try:
            lines = list(handle)
        except UnicodeDecodeError as exc:
            raise DataFormatError(f"{path} is not valid UTF-8: {exc}") from None
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{path}, line {number}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataFormatError(f"{where}: not valid JSON ({exc.msg}).") from None
        if not isinstance(row, dict) or "prompt" not in row or "candidates" not in row:
            raise DataFormatError(
                f"{where}: each row must be an object with 'prompt' and 'candidates'."
            )
        candidates = row["candidates"]
        if (
            not isinstance(candidates, list)
            or not candidates
            or not all(isinstance(c, str) for c in candidates)
        ):
            raise DataFormatError(
                f"{where}: 'candidates' must be a non-empty list of response strings."
            )
        rows.append(row)
    if not rows:
        raise DataFormatError(f"{path} has no rows; each line needs a prompt and candidates.")
    return rows


def write_rows(path: str | os.PathLike, rows: Sequence[dict[str, Any]]) -> Path:
    """Write rows as JSONL, atomically."""
    text = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    return atomic_write_text(path, text)
