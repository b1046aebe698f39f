"""Every reward of a model over the units, refining `CHUNK_ROWS` responses at a time.

The metrics read only per-response values and, for pairwise units, one P(chosen >
rejected) per unit; the embeddings are needed only to make them. So responses are fetched
(embedded, or sliced from a table) and refined a chunk at a time, each chunk reduced to
scalars: base and refined rewards, the references' rewards, and the P(a > b) of the pairs
whose two responses have been fetched. A response's embedding is kept past its chunk only
while a pair still waiting for its other response needs it, so peak memory is set by the
chunk, not by the number of responses (for data whose pairs sit close together, as every
loader writes them).

The results equal the whole-table computation's: chunks are multiples of the grid
posterior's 64-row company and pairs are compared in the same blocks of
`P_BETTER_BLOCK` units as before.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import torch

from ebrm._progress import tqdm
from ebrm.evaluation.benchmark import BASE, REFINED
from ebrm.evaluation.calibration import bt_probability
from ebrm.evaluation.fair import BASE_CALIBRATED
from ebrm.evaluation.protocols import RefiningModel
from ebrm.evaluation.units import Reward, Units, UnitScores, gather
from ebrm.references import base_p_better, reference_rewards
from ebrm.refine.kinds import RewardKind

# Responses fetched and refined at a time: a multiple of the grid posterior's row chunk
# (64), so that every response is refined in the same company as from one whole table.
CHUNK_ROWS = 4096
# Pairs per P(a > b) call, in unit order: bounds the (pairs x grid) work buffer.
P_BETTER_BLOCK = 2048

Fetch = Callable[[int, int], tuple[torch.Tensor, torch.Tensor]]
"""Rows [start, stop) of the responses: ((n, D) embeddings, (n,) raw base rewards)."""


@dataclass(frozen=True)
class StreamedScores:
    """What `stream_scores` computed: each reward's unit scores, and the method used."""

    scores: dict[str, UnitScores]  # reward name -> its scores over the units
    method: str  # the refinement method that made "refined"


def stream_scores(
    model: RefiningModel,
    units: Units,
    n_rows: int,
    fetch: Fetch,
    *,
    reward: RewardKind,
    method: str | None = None,
    chunk_rows: int = CHUNK_ROWS,
    progress: bool = False,
) -> StreamedScores:
    """The model's rewards over `units`, with P(chosen > rejected) for pairwise units:
    "base", "refined" (its `reward` refined by `method`) and its stored references
    ("base-calibrated", "laplace", "ensemble").

    Args:
        units: rows into the `n_rows` responses `fetch` returns.
        fetch: rows [start, stop) of the responses; called once per chunk, in order.
        chunk_rows: responses per chunk (a multiple of 64 keeps results chunk-independent).
        progress: show a progress bar over the responses.

    Raises:
        ValueError: `chunk_rows` < 1.
    """
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be >= 1; got {chunk_rows}.")
    refs = {} if model.references is None else dict(model.references.rewards)
    k = model.refine_config.conservative_k
    values = {name: np.empty(n_rows) for name in (BASE, REFINED, *refs)}
    raw = np.empty(n_rows)
    pairs = _Pairs(units, n_rows) if units.is_pairwise and len(units) else None
    p = {name: np.empty(len(units)) for name in (REFINED, *refs)} if pairs else {}
    used = method
    bar = tqdm(total=n_rows, desc="eval", unit="response", disable=not progress)
    for start in range(0, n_rows, chunk_rows):
        stop = min(start + chunk_rows, n_rows)
        emb, raw_part = fetch(start, stop)
        refined = model.refine(emb, raw_part, method=method)
        used = refined.method
        raw[start:stop] = refined.base_raw.detach().cpu().double().numpy()
        values[BASE][start:stop] = refined.base.detach().cpu().double().numpy()
        values[REFINED][start:stop] = refined.reward_for(reward).detach().cpu().double().numpy()
        emb = torch.as_tensor(emb).detach().cpu()
        for name, ref in refs.items():
            scored = reference_rewards(ref, emb, k=k)
            column = scored.lcb if reward == "conservative" else scored.mean
            values[name][start:stop] = column.double().numpy()
        if pairs is not None:
            pairs.hold(start, emb)
            for block, ea, eb in pairs.ready(stop):
                with torch.no_grad():
                    p[REFINED][block] = _probability(model.p_better(ea, eb))
                    for name, ref in refs.items():
                        p[name][block] = _probability(ref.p_better(ea, eb))
        bar.update(stop - start)
    bar.close()
    if used is None:  # no rows: nothing was refined
        used = model.refine_config.method
    rewards = {name: Reward(column) for name, column in values.items()}
    if model.references is not None:
        rewards[BASE_CALIBRATED] = Reward(values[BASE])
    scores = {name: gather(r, units) for name, r in rewards.items()}
    if pairs is not None:
        a, b = pairs.a, pairs.b
        p[BASE] = _probability(bt_probability(raw[a], raw[b]))
        if model.references is not None:
            t = model.references.base_temperature
            raw_t = torch.as_tensor(raw)
            p[BASE_CALIBRATED] = _probability(base_p_better(raw_t[a], raw_t[b], t))
        scores = {name: replace(s, p_chosen=p[name]) for name, s in scores.items()}
    order = [BASE, REFINED, *([BASE_CALIBRATED] if model.references else []), *refs]
    return StreamedScores({name: scores[name] for name in order}, used)


def _probability(p) -> np.ndarray:
    """(P,) float64 in [0, 1] from a tensor or array (as `gather` and the p_better wrappers
    clip them)."""
    if isinstance(p, torch.Tensor):
        p = p.detach().cpu().double().clamp(0.0, 1.0).numpy()
    return np.clip(np.asarray(p, dtype=np.float64), 0.0, 1.0)


class _Pairs:
    """The pairwise units in blocks of `P_BETTER_BLOCK`, each handed out once both
    responses of all its pairs have been fetched, with the embeddings it needs."""

    def __init__(self, units: Units, n_rows: int) -> None:
        self.a, self.b = units.chosen[:, 0], units.rejected[:, 0]  # (U,) rows
        n = len(self.a)
        self.blocks = [slice(s, min(s + P_BETTER_BLOCK, n)) for s in range(0, n, P_BETTER_BLOCK)]
        # a block is ready once its highest row is fetched; a row is needed up to the last
        # block that uses it
        self.ready_at = [int(max(self.a[s].max(), self.b[s].max())) for s in self.blocks]
        block_of = np.repeat(np.arange(len(self.blocks)), [s.stop - s.start for s in self.blocks])
        self.last_use = np.full(n_rows, -1, dtype=np.int64)
        np.maximum.at(self.last_use, self.a, block_of)
        np.maximum.at(self.last_use, self.b, block_of)
        self.next = 0  # the first block not handed out yet
        self.held: dict[int, torch.Tensor] = {}  # row -> (D,) embedding

    def hold(self, start: int, emb: torch.Tensor) -> None:
        """Keep the rows of a fetched chunk that a block not yet handed out needs."""
        wanted = np.flatnonzero(self.last_use[start : start + len(emb)] >= self.next)
        for i in wanted.tolist():
            self.held[start + i] = emb[i].clone()  # a copy: the chunk itself can go

    def ready(self, stop: int):
        """Yield (units, (P, D) chosen embeddings, (P, D) rejected embeddings) of every
        block whose rows are all below `stop`, in order; forget rows no block needs."""
        while self.next < len(self.blocks) and self.ready_at[self.next] < stop:
            block = self.blocks[self.next]
            ea = torch.stack([self.held[r] for r in self.a[block].tolist()])
            eb = torch.stack([self.held[r] for r in self.b[block].tolist()])
            yield block, ea, eb
            self.next += 1
            for row in [r for r in self.held if self.last_use[r] < self.next]:
                del self.held[row]
