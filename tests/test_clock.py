"""The fake clock: time moves only when a test says so, and sleepers wake in order."""

from __future__ import annotations

import asyncio

from monitor.core.clock import FakeClock


async def test_a_sleeper_wakes_only_when_its_time_has_come() -> None:
    clock = FakeClock()
    woke: list[float] = []

    async def sleeper() -> None:
        await clock.sleep(10)
        woke.append(clock.monotonic())

    task = asyncio.create_task(sleeper())
    await clock.advance(9.9)
    assert woke == []
    await clock.advance(0.1)
    assert woke == [10.0]
    await task


async def test_sleepers_wake_in_deadline_order_at_their_own_time() -> None:
    clock = FakeClock()
    woke: list[tuple[str, float]] = []

    async def sleeper(name: str, seconds: float) -> None:
        await clock.sleep(seconds)
        woke.append((name, clock.monotonic()))

    tasks = [asyncio.create_task(sleeper(n, s)) for n, s in (("late", 5), ("early", 1), ("mid", 3))]
    await clock.advance(60)
    assert woke == [("early", 1.0), ("mid", 3.0), ("late", 5.0)]
    await asyncio.gather(*tasks)


async def test_a_loop_on_the_clock_runs_once_per_period() -> None:
    clock = FakeClock()
    ticks: list[float] = []

    async def loop() -> None:
        while True:
            await clock.sleep(2)
            ticks.append(clock.monotonic())

    task = asyncio.create_task(loop())
    await clock.advance(10)
    task.cancel()
    assert ticks == [2.0, 4.0, 6.0, 8.0, 10.0]


async def test_wall_time_moves_with_monotonic_time() -> None:
    clock = FakeClock(start=1000.0)
    await clock.advance(5)
    assert clock.time() == 1005.0
    assert clock.monotonic() == 5.0
