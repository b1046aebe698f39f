"""Server-side micro-batching: requests that arrive together share one forward pass.

One asyncio worker takes the first waiting request, gathers more for at most
`max_wait_ms` (or until `max_batch_size` responses), scores them in one call on a
dedicated thread (the event loop keeps accepting requests meanwhile) and hands each
request its slice. While a batch is being scored, new requests queue up, so under load
batches fill without any waiting. The queue is bounded in responses: when full, `submit`
raises `QueueFullError` at once (HTTP 503) instead of letting latency grow without bound.

`plan_forward_batches` splits one micro-batch into length-sorted forward passes so that
batching never pays for padding it can avoid: on a CPU a forward costs about a fixed
overhead plus one unit per (padded) token, so a long text must not pad a batch of short ones.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger(__name__)


def plan_forward_batches(
    lengths: Sequence[int], *, overhead: float, max_rows: int
) -> list[list[int]]:
    """Partition items into forward batches of least padded cost.

    A forward pass over rows padded to their longest length L is modelled as costing
    `overhead + rows * L` (token units): the per-call overhead against the padded tokens.
    Sorting by length and cutting the sorted order into contiguous runs is optimal for
    this cost (moving a shorter item into a batch of longer ones never lowers the
    longest length of any batch), so dynamic programming over the cut points finds the
    exact minimum in O(n * max_rows).

    Args:
        lengths: (n,) length of each item (tokens, or a proxy proportional to them).
        overhead: cost of one forward pass in the same units (>= 0); 0 gives one batch per
            distinct length, a large value as few batches as `max_rows` allows.
        max_rows: most items per forward pass (>= 1).

    Returns:
        Batches of item indices, each sorted by length, longest batch first; together
        they hold every index once.
    """
    if max_rows < 1:
        raise ValueError(f"max_rows must be >= 1. Got {max_rows} instead.")
    if overhead < 0:
        raise ValueError(f"overhead must be >= 0. Got {overhead} instead.")
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    n = len(order)
    best = [0.0] + [math.inf] * n  # best[j]: least cost of the j shortest items
    cut = [0] * (n + 1)  # cut[j]: where the last batch of the best plan for j starts
    for j in range(1, n + 1):
        longest = lengths[order[j - 1]]  # the last batch ends at item j-1, the longest
        for i in range(max(0, j - max_rows), j):
            cost = best[i] + overhead + (j - i) * longest
            if cost < best[j]:
                best[j], cut[j] = cost, i
    batches = []
    j = n
    while j > 0:
        batches.append(order[cut[j] : j])
        j = cut[j]
    return batches


class QueueFullError(RuntimeError):
    """The batcher holds `max_queue` responses already; the client should retry later."""


@dataclass
class _Job:
    items: list[Any]
    future: asyncio.Future
    enqueued: float = field(default_factory=time.perf_counter)


@dataclass
class BatchStats:
    """Counters for `/metrics` (batch sizes and queueing)."""

    batches: int = 0  # forward passes run
    items: int = 0  # responses scored
    max_batch: int = 0  # largest batch so far
    rejected: int = 0  # submissions refused because the queue was full
    failures: int = 0  # batches whose scoring raised
    recent_sizes: deque = field(default_factory=lambda: deque(maxlen=1000))

    def to_dict(self) -> dict[str, Any]:
        sizes = list(self.recent_sizes)
        return {
            "batches": self.batches,
            "items": self.items,
            "max_batch_size_seen": self.max_batch,
            "mean_batch_size": self.items / self.batches if self.batches else 0.0,
            "recent_mean_batch_size": sum(sizes) / len(sizes) if sizes else 0.0,
            "rejected_queue_full": self.rejected,
            "failed_batches": self.failures,
        }


class MicroBatcher:
    """Collect items from concurrent callers and score them in batches.

    Args:
        score_batch: scores a list of items and returns one result per item, in order
            (runs on a single worker thread, so it never runs twice at once).
        max_batch_size: most items per call of `score_batch` (a single larger request is
            scored on its own).
        max_wait_ms: how long the first item of a batch may wait for company.
        max_queue: most items waiting; beyond it `submit` raises `QueueFullError`.
    """

    def __init__(
        self,
        score_batch: Callable[[list[Any]], list[Any]],
        *,
        max_batch_size: int = 64,
        max_wait_ms: float = 5.0,
        max_queue: int = 4096,
    ) -> None:
        if max_batch_size < 1:
            raise ValueError(f"max_batch_size must be >= 1. Got {max_batch_size} instead.")
        if max_wait_ms < 0:
            raise ValueError(f"max_wait_ms must be >= 0. Got {max_wait_ms} instead.")
        if max_queue < 1:
            raise ValueError(f"max_queue must be >= 1. Got {max_queue} instead.")
        self.score_batch = score_batch
        self.max_batch_size = max_batch_size
        self.max_wait = max_wait_ms / 1000.0
        self.max_queue = max_queue
        self.stats = BatchStats()
        self._jobs: deque[_Job] = deque()
        self._queued_items = 0
        self._wakeup: asyncio.Event | None = None
        self._worker: asyncio.Task | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._stopping = False

    @property
    def queued_items(self) -> int:
        return self._queued_items

    async def start(self) -> None:
        """Start the worker (call from the running event loop, e.g. app lifespan)."""
        if self._worker is not None:
            return
        self._wakeup = asyncio.Event()
        self._stopping = False
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ebrm-score")
        self._worker = asyncio.create_task(self._run(), name="ebrm-batcher")

    async def stop(self) -> None:
        """Score everything already queued, then stop the worker."""
        if self._worker is None or self._wakeup is None:
            return
        self._stopping = True
        self._wakeup.set()
        await self._worker
        self._worker = None
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None

    async def submit(self, items: list[Any]) -> list[Any]:
        """Queue `items` and wait for their results (in order)."""
        if not items:
            return []
        if self._worker is None or self._wakeup is None or self._stopping:
            raise RuntimeError("MicroBatcher is not running (start() not called, or stopped)")
        if self._queued_items + len(items) > self.max_queue:
            self.stats.rejected += 1
            raise QueueFullError(
                f"{self._queued_items} responses are already queued (limit {self.max_queue}); "
                "retry later"
            )
        job = _Job(items=list(items), future=asyncio.get_running_loop().create_future())
        self._jobs.append(job)
        self._queued_items += len(job.items)
        self._wakeup.set()
        return await job.future

    def _take_batch(self) -> list[_Job]:
        batch = [self._jobs.popleft()]
        size = len(batch[0].items)
        while self._jobs and size + len(self._jobs[0].items) <= self.max_batch_size:
            job = self._jobs.popleft()
            batch.append(job)
            size += len(job.items)
        self._queued_items -= size
        return batch

    async def _run(self) -> None:
        assert self._wakeup is not None
        loop = asyncio.get_running_loop()
        while True:
            if not self._jobs:
                if self._stopping:
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            # Give late arrivals up to max_wait to join, unless the batch is already full.
            deadline = self._jobs[0].enqueued + self.max_wait
            while self._queued_items < self.max_batch_size and not self._stopping:
                remaining = deadline - time.perf_counter()
                if remaining <= 0:
                    break
                self._wakeup.clear()
                try:
                    await asyncio.wait_for(self._wakeup.wait(), remaining)
                except asyncio.TimeoutError:
                    break
            batch = self._take_batch()
            await self._score(loop, batch)

    async def _score(self, loop: asyncio.AbstractEventLoop, batch: list[_Job]) -> None:
        items = [item for job in batch for item in job.items]
        try:
            results = await loop.run_in_executor(self._executor, self.score_batch, items)
            if len(results) != len(items):
                raise RuntimeError(f"scorer returned {len(results)} results for {len(items)}")
        except Exception as exc:  # noqa: BLE001 - isolate the request that broke the batch
            self.stats.failures += 1
            if len(batch) == 1:
                logger.exception("scoring failed for a request of %d items", len(items))
                if not batch[0].future.done():
                    batch[0].future.set_exception(exc)
                return
            logger.warning(
                "a batch of %d requests failed (%s); scoring them one by one", len(batch), exc
            )
            for job in batch:
                await self._score(loop, [job])
            return
        self.stats.batches += 1
        self.stats.items += len(items)
        self.stats.max_batch = max(self.stats.max_batch, len(items))
        self.stats.recent_sizes.append(len(items))
        start = 0
        for job in batch:
            end = start + len(job.items)
            if not job.future.done():  # the client may have gone away
                job.future.set_result(results[start:end])
            start = end
