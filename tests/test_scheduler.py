"""The probe dispatcher: slots spread over the interval, bounded concurrency, no overlap."""

from __future__ import annotations

import asyncio
import time

from monitor.scheduler import ProbeDispatcher, slot_offset


def test_slot_offsets_spread_targets_over_the_interval() -> None:
    offsets = sorted(slot_offset(("m", f"http://h{i}", "health"), 30.0) for i in range(1000))
    assert offsets[0] >= 0 and offsets[-1] < 30
    # Every tenth of the interval holds roughly a tenth of the targets.
    buckets = [sum(1 for o in offsets if k * 3 <= o < (k + 1) * 3) for k in range(10)]
    assert min(buckets) > 60 and max(buckets) < 140


def test_slot_offset_is_stable_across_runs() -> None:
    assert slot_offset(("m", "h", "health"), 30) == slot_offset(("m", "h", "health"), 30)


async def test_each_target_runs_once_per_interval() -> None:
    runs: list[str] = []

    async def run(t: str) -> None:
        runs.append(t)

    d: ProbeDispatcher[str] = ProbeDispatcher(run, lambda t: 0.2, limit=10, jitter=0.0)
    for t in ("a", "b", "c"):
        d.add(t)
    task = asyncio.create_task(d.run_forever())
    await asyncio.sleep(1.05)
    await d.close()
    task.cancel()
    for t in ("a", "b", "c"):
        assert 4 <= runs.count(t) <= 6


async def test_concurrency_never_exceeds_the_limit() -> None:
    running = 0
    peak = 0

    async def run(t: int) -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.05)
        running -= 1

    d: ProbeDispatcher[int] = ProbeDispatcher(run, lambda t: 0.1, limit=5, jitter=0.0)
    for i in range(50):
        d.add(i)
    task = asyncio.create_task(d.run_forever())
    await asyncio.sleep(0.5)
    await d.close()
    task.cancel()
    assert peak == 5


async def test_a_hung_target_does_not_delay_the_others_and_is_not_run_twice() -> None:
    runs: dict[str, int] = {"hung": 0, "fast": 0}

    async def run(t: str) -> None:
        runs[t] += 1
        if t == "hung":
            await asyncio.sleep(10)

    d: ProbeDispatcher[str] = ProbeDispatcher(run, lambda t: 0.1, limit=10, jitter=0.0)
    d.add("hung")
    d.add("fast")
    task = asyncio.create_task(d.run_forever())
    await asyncio.sleep(0.55)
    await d.close()
    task.cancel()
    assert runs["hung"] == 1
    assert runs["fast"] >= 4
    assert d.stats.skipped_overrun >= 3


async def test_soon_adds_one_extra_run_without_moving_the_slot() -> None:
    times: list[float] = []

    async def run(t: str) -> None:
        times.append(time.monotonic())

    d: ProbeDispatcher[str] = ProbeDispatcher(run, lambda t: 10.0, limit=1, jitter=0.0)
    d.add("x", first_within=0.0)
    task = asyncio.create_task(d.run_forever())
    await asyncio.sleep(0.05)
    d.soon("x", 0.1)
    await asyncio.sleep(0.3)
    await d.close()
    task.cancel()
    assert len(times) == 2 and 0.08 <= times[1] - times[0] <= 0.3


async def test_removed_target_stops_running() -> None:
    runs: list[str] = []

    async def run(t: str) -> None:
        runs.append(t)

    d: ProbeDispatcher[str] = ProbeDispatcher(run, lambda t: 0.1, limit=1, jitter=0.0)
    d.add("x", first_within=0.0)
    task = asyncio.create_task(d.run_forever())
    await asyncio.sleep(0.15)
    d.remove("x")
    n = len(runs)
    await asyncio.sleep(0.3)
    await d.close()
    task.cancel()
    assert len(runs) == n
