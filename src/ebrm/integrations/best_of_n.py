"""Best-of-n: pick the best candidate per prompt, and the unbiased best-of-n estimator.

`expected_best_of_n(gold, proxy, n)` is the estimator of Nakano et al. (2021, WebGPT) used
by Gao et al. (2023): from a pool of m >= n scored samples, the average over all n-subsets
of the gold score of the subset's proxy-argmax, computed exactly from order statistics:
with the pool sorted by proxy score, the i-th smallest (1-based) is the argmax of
C(i-1, n-1) of the C(m, n) subsets. Ties in the proxy are broken uniformly at random (each
tied maximum gets an equal share), so the result does not depend on the input order.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

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


def _log_comb(a: torch.Tensor, n: int) -> torch.Tensor:
    """log C(a, n) elementwise, -inf where a < n."""
    a = a.to(torch.float64)
    out = torch.lgamma(a + 1) - math.lgamma(n + 1) - torch.lgamma((a - n).clamp(min=0) + 1)
    return torch.where(a >= n, out, torch.full_like(out, -math.inf))


def best_of_n_weights(proxy: Sequence[float] | torch.Tensor, n: int) -> torch.Tensor:
    """P(sample i is the chosen proxy-argmax of a uniformly random n-subset), shape (m,).

    Raises:
        ValueError: n < 1 or n > m.
    """
    proxy = torch.as_tensor(proxy, dtype=torch.float64).flatten()
    m = proxy.numel()
    if not 1 <= n <= m:
        raise ValueError(f"n must be in 1..{m} (the pool size). Got {n} instead.")
    if not torch.isfinite(proxy).all():
        raise ValueError("proxy scores must be finite")
    values, counts = torch.unique(proxy, sorted=True, return_counts=True)  # ascending groups
    below = torch.cumsum(counts, 0) - counts  # samples strictly below each group
    # P(max of the subset lies in the group) = [C(L + k, n) - C(L, n)] / C(m, n)
    log_total = _log_comb(torch.tensor(float(m)), n)
    upper = torch.exp(_log_comb(below + counts, n) - log_total)
    lower = torch.exp(_log_comb(below, n) - log_total)
    group_weight = (upper - lower) / counts  # shared equally by the tied members
    index = torch.searchsorted(values, proxy)
    return group_weight[index]


def expected_best_of_n(
    rewards_gold: Sequence[float] | torch.Tensor,
    rewards_proxy: Sequence[float] | torch.Tensor,
    n: int,
) -> float:
    """Expected gold reward of the proxy's best of n samples drawn from the pool (unbiased).

    Args:
        rewards_gold: (m,) gold scores of the pool's samples.
        rewards_proxy: (m,) proxy scores of the same samples (what best-of-n maximises).
        n: samples per draw, 1 <= n <= m.

    Returns:
        The mean over all n-subsets of the pool of the gold score of the subset's proxy
        argmax (ties shared equally). n = 1 gives the pool's mean gold score.
    """
    gold = torch.as_tensor(rewards_gold, dtype=torch.float64).flatten()
    proxy = torch.as_tensor(rewards_proxy, dtype=torch.float64).flatten()
    if gold.shape != proxy.shape:
        raise ValueError(
            f"rewards_gold has {gold.numel()} values but rewards_proxy has {proxy.numel()}; "
            "give one gold and one proxy score per sample."
        )
    return float((best_of_n_weights(proxy, n) * gold).sum())


def best_of_n_curve(
    rewards_gold: Sequence[float] | torch.Tensor,
    rewards_proxy: Sequence[float] | torch.Tensor,
    ns: Sequence[int],
) -> list[float]:
    """`expected_best_of_n` for every n in `ns`."""
    return [expected_best_of_n(rewards_gold, rewards_proxy, n) for n in ns]


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
