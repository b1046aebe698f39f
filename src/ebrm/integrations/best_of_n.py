"""Best-of-n: pick the best candidate per prompt (`ebrm bon`).

Prompts are read, scored and written as a stream: at most `CHUNK_TEXTS` candidates are
embedded and refined at a time, whatever the number of prompts, and `write_best` writes
each row as soon as its prompt's candidates are scored.

The unbiased estimator of a proxy's best-of-n gold reward lives in
`ebrm.evaluation.best_of_n`.
"""

from __future__ import annotations

import json
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from ebrm._io import atomic_write, atomic_write_text
from ebrm.errors import DataFormatError
from ebrm.integrations._common import (
    Scorer,
    rewards_of,
    score_safely,
    to_conversation,
)
from ebrm.refine.kinds import resolve_reward
from ebrm.rm.names import DEFAULT_BATCH_SIZE

# Candidates scored per call: bounds memory by the chunk, not the file. A multiple of the
# grid posterior's row chunk (64), so that every candidate is refined in the same company
# as from one call over all of them (the output does not depend on the chunk).
CHUNK_TEXTS = 4096

# ---- selecting the best candidate -------------------------------------------------------


def _best_row(row: dict[str, Any], reward: str, values: list[float], records: list[dict]):
    best = max(range(len(values)), key=lambda i: (values[i], -i))
    return {**row, "best_index": best, "best": row["candidates"][best], "reward": reward,
            "rewards": values, "scores": records}  # fmt: skip


def iter_best(
    scorer: Scorer,
    rows: Iterable[dict[str, Any]],
    *,
    reward: str | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    chunk_texts: int = CHUNK_TEXTS,
    mode: str | None = None,
) -> Iterator[dict[str, Any]]:
    """`select_best`, one row at a time: rows are read from `rows` as needed and each is
    yielded once all its candidates are scored, scoring `chunk_texts` candidates per call
    (a prompt's candidates may span two calls). The rows are `select_best`'s.

    Raises:
        ValueError: `chunk_texts` < 1.
        DataFormatError: a row without candidates.
    """
    if chunk_texts < 1:
        raise ValueError(f"chunk_texts must be >= 1; got {chunk_texts}.")
    reward = resolve_reward(reward, mode)
    waiting: deque[tuple[dict[str, Any], list[float], list[dict]]] = deque()  # rows, in order
    convs, owners = [], []  # candidates not yet scored, and the waiting row each belongs to
    done = 0  # rows already yielded: waiting[i] is row done + i

    def score(n: int) -> Iterator[dict[str, Any]]:
        nonlocal done
        result = score_safely(scorer, convs[:n], batch_size=batch_size)
        for owner, value, record in zip(
            owners[:n], rewards_of(result, reward), result.to_records(), strict=True
        ):
            waiting[owner - done][1].append(value)
            waiting[owner - done][2].append(record)
        del convs[:n], owners[:n]
        while waiting and len(waiting[0][1]) == len(waiting[0][0]["candidates"]):
            row, values, records = waiting.popleft()
            done += 1
            yield _best_row(row, reward, values, records)

    for r, row in enumerate(rows):
        if not row["candidates"]:
            raise DataFormatError(f"row {r}: 'candidates' must be a non-empty list.")
        waiting.append((row, [], []))
        for c, candidate in enumerate(row["candidates"]):
            convs.append(to_conversation(row["prompt"], candidate, f"row {r} candidate {c}"))
            owners.append(r)
        while len(convs) >= chunk_texts:
            yield from score(chunk_texts)
    if convs:
        yield from score(len(convs))


def select_best(
    scorer: Scorer,
    rows: Sequence[dict[str, Any]],
    *,
    reward: str | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    mode: str | None = None,
    chunk_texts: int = CHUNK_TEXTS,
) -> list[dict[str, Any]]:
    """Score every candidate of every row and pick the best per row.

    Args:
        rows: dicts with "prompt" (string or message list) and "candidates" (list of
            response strings); other keys are passed through.
        reward: the `RewardKind` to rank by (refined, mean, conservative, base, ...;
            default refined).
        mode: the deprecated name of `reward` (warns).
        chunk_texts: candidates scored per call (the result does not depend on it).

    Returns:
        The rows with "best_index", "best", "reward" (the kind ranked by), "rewards" (its
        value per candidate) and "scores" (each candidate's record, `RefinedRewards.to_records`:
        the fields `ebrm score` and the server write) added.
        Ties go to the earliest candidate.
    """
    return list(
        iter_best(
            scorer,
            rows,
            reward=reward,
            batch_size=batch_size,
            chunk_texts=chunk_texts,
            mode=mode,
        )  # fmt: skip
    )


def write_best(
    path: str | os.PathLike,
    scorer: Scorer,
    rows: Iterable[dict[str, Any]],
    *,
    reward: str | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    chunk_texts: int = CHUNK_TEXTS,
    on_row: Callable[[dict[str, Any]], None] | None = None,
) -> int:
    """`iter_best` written to `path` as JSONL while scoring (`write_rows`'s lines): the
    file is moved into place only when every row is written (atomic).

    Args:
        on_row: called with each row once it is written (e.g. to advance a progress bar).

    Returns:
        The number of rows written.
    """
    written = 0

    def write(tmp: Path) -> None:
        nonlocal written
        with open(tmp, "w", encoding="utf-8") as handle:
            for row in iter_best(
                scorer, rows, reward=reward, batch_size=batch_size, chunk_texts=chunk_texts
            ):
                handle.write(_line(row))
                written += 1
                if on_row is not None:
                    on_row(row)

    atomic_write(path, write)
    return written


def iter_candidates(path: str | os.PathLike) -> Iterator[dict[str, Any]]:
    """The rows of a JSONL file of {"prompt", "candidates": [...]}, read and validated one
    line at a time (`read_candidates` without holding the file)."""
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(f"Candidates file {path} does not exist; pass a JSONL file.")
    any_rows = False
    with open(path, encoding="utf-8", errors="strict") as handle:
        number = 0
        while True:
            try:
                line = handle.readline()
            except UnicodeDecodeError as exc:
                raise DataFormatError(f"{path} is not valid UTF-8: {exc}") from None
            if not line:
                break
            number += 1
            if line.strip():
                yield _candidate_row(line, f"{path}, line {number}")
                any_rows = True
    if not any_rows:
        raise DataFormatError(f"{path} has no rows; each line needs a prompt and candidates.")


def _candidate_row(line: str, where: str) -> dict[str, Any]:
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
    return row


def read_candidates(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Read a JSONL file of {"prompt", "candidates": [...]} rows, validating each row."""
    return list(iter_candidates(path))


def _line(row: dict[str, Any]) -> str:
    return json.dumps(row, ensure_ascii=False) + "\n"


def write_rows(path: str | os.PathLike, rows: Sequence[dict[str, Any]]) -> Path:
    """Write rows as JSONL, atomically."""
    return atomic_write_text(path, "".join(_line(row) for row in rows))
