"""The micro-batcher on its own: grouping, limits, order, failures, draining."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from ebrm.integrations.batcher import MicroBatcher, QueueFullError


class Recorder:
    def __init__(self, delay: float = 0.0, fail_on: object = None) -> None:
        self.batches: list[list] = []
        self.delay, self.fail_on = delay, fail_on
        self.running = 0
        self.max_running = 0
        self.lock = threading.Lock()

    def __call__(self, items: list) -> list:
        with self.lock:
            self.running += 1
            self.max_running = max(self.max_running, self.running)
        try:
            self.batches.append(list(items))
            if self.fail_on in items:
                raise RuntimeError("bad item")
            time.sleep(self.delay)
            return [x * 10 for x in items]
        finally:
            with self.lock:
                self.running -= 1


def run(coro):
    return asyncio.run(coro)


def test_concurrent_requests_are_grouped_up_to_the_limit_and_keep_order():
    rec = Recorder(delay=0.02)

    async def main():
        b = MicroBatcher(rec, max_batch_size=5, max_wait_ms=30, max_queue=100)
        await b.start()
        out = await asyncio.gather(*[b.submit([i, i + 100]) for i in range(7)])
        await b.stop()
        return out, b

    out, b = run(main())
    assert out == [[i * 10, (i + 100) * 10] for i in range(7)]
    assert all(len(batch) <= 5 for batch in rec.batches)  # two 2-item requests fit in 5
    assert sum(len(x) for x in rec.batches) == 14 and len(rec.batches) < 7
    assert rec.max_running == 1  # one forward pass at a time
    assert b.stats.items == 14 and b.stats.batches == len(rec.batches)


def test_a_request_larger_than_the_batch_is_scored_alone():
    rec = Recorder()

    async def main():
        b = MicroBatcher(rec, max_batch_size=2, max_wait_ms=0)
        await b.start()
        out = await b.submit(list(range(5)))
        await b.stop()
        return out

    assert run(main()) == [0, 10, 20, 30, 40] and rec.batches == [[0, 1, 2, 3, 4]]


def test_bounded_wait_a_lone_request_is_not_held_long():
    rec = Recorder()

    async def main():
        b = MicroBatcher(rec, max_batch_size=64, max_wait_ms=50)
        await b.start()
        start = time.perf_counter()
        await b.submit([1])
        elapsed = time.perf_counter() - start
        await b.stop()
        return elapsed

    assert 0.04 <= run(main()) < 1.0


def test_queue_full_raises_and_counts():
    rec = Recorder(delay=0.2)

    async def main():
        b = MicroBatcher(rec, max_batch_size=1, max_wait_ms=0, max_queue=3)
        await b.start()
        results = await asyncio.gather(*[b.submit([i]) for i in range(6)], return_exceptions=True)
        await b.stop()
        return results, b

    results, b = run(main())
    errors = [r for r in results if isinstance(r, QueueFullError)]
    assert len(errors) == 3 and b.stats.rejected == 3
    for i, r in enumerate(results):
        assert r == [i * 10] or isinstance(r, QueueFullError)


def test_a_failing_request_does_not_fail_its_batch_mates():
    rec = Recorder(fail_on=13)

    async def main():
        b = MicroBatcher(rec, max_batch_size=8, max_wait_ms=30)
        await b.start()
        out = await asyncio.gather(
            b.submit([1]), b.submit([13]), b.submit([2]), return_exceptions=True
        )
        await b.stop()
        return out

    out = run(main())
    assert out[0] == [10] and out[2] == [20]
    assert isinstance(out[1], RuntimeError)


def test_stop_drains_queued_work_and_submit_needs_start():
    rec = Recorder(delay=0.05)

    async def main():
        b = MicroBatcher(rec, max_batch_size=1, max_wait_ms=0)
        with pytest.raises(RuntimeError, match="not running"):
            await b.submit([1])
        await b.start()
        tasks = [asyncio.create_task(b.submit([i])) for i in range(4)]
        await asyncio.sleep(0)
        await b.stop()
        return [t.result() for t in tasks]

    assert run(main()) == [[0], [10], [20], [30]]


def test_invalid_settings():
    with pytest.raises(ValueError, match="max_batch_size must be >= 1. Got 0"):
        MicroBatcher(lambda x: x, max_batch_size=0)
    with pytest.raises(ValueError, match="max_queue"):
        MicroBatcher(lambda x: x, max_queue=0)


# ---- forward-batch planning ------------------------------------------------------------


def _partitions(items: list[int]):
    """Every set partition of `items` (Bell(n) of them)."""
    if not items:
        yield []
        return
    first, rest = items[0], items[1:]
    for part in _partitions(rest):
        yield [[first], *part]
        for k in range(len(part)):
            yield [*part[:k], [first, *part[k]], *part[k + 1 :]]


def _cost(batches, lengths, overhead):
    return sum(overhead + len(b) * max(lengths[i] for i in b) for b in batches)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize(("overhead", "max_rows"), [(0.0, 7), (5.0, 3), (30.0, 7), (1e6, 2)])
def test_plan_forward_batches_is_the_least_cost_partition(seed, overhead, max_rows):
    import random

    from ebrm.integrations.batcher import plan_forward_batches

    rng = random.Random(seed)
    lengths = [rng.randint(1, 60) for _ in range(7)]
    plan = plan_forward_batches(lengths, overhead=overhead, max_rows=max_rows)
    assert sorted(i for b in plan for i in b) == list(range(7))
    assert all(1 <= len(b) <= max_rows for b in plan)
    # brute force over all 877 set partitions of 7 items, not only the sorted cuts
    best = min(
        _cost(p, lengths, overhead)
        for p in _partitions(list(range(7)))
        if all(len(b) <= max_rows for b in p)
    )
    assert _cost(plan, lengths, overhead) == pytest.approx(best)


def test_plan_forward_batches_extremes():
    from ebrm.integrations.batcher import plan_forward_batches

    lengths = [10, 200, 12, 11, 190]
    # free forwards: nothing is padded; expensive forwards: one batch up to max_rows
    free = plan_forward_batches(lengths, overhead=0, max_rows=8)
    assert all(len({lengths[i] for i in b}) == 1 for b in free)
    assert plan_forward_batches(lengths, overhead=1e9, max_rows=8) == [[0, 3, 2, 4, 1]]
    assert plan_forward_batches([], overhead=1, max_rows=2) == []
    with pytest.raises(ValueError, match="max_rows must be >= 1. Got 0"):
        plan_forward_batches(lengths, overhead=1, max_rows=0)
    with pytest.raises(ValueError, match="overhead must be >= 0"):
        plan_forward_batches(lengths, overhead=-1, max_rows=2)
