"""The probe dispatcher: slots spread over the interval, bounded concurrency, no overlap.

Every test runs the dispatcher on a `FakeClock`: time moves only when the test advances it, so
counts and timings are exact, whatever the load of the machine."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable
from contextlib import asynccontextmanager
from typing import TypeVar

import pytest

from monitor.core.clock import FakeClock
from monitor.parts.dispatcher import (
    MIN_IN_FLIGHT,
    MIN_START_PER_TURN,
    START_PER_TURN,
    TURN_BUDGET_S,
    Dispatcher,
    SchedulerStats,
    next_in_flight_cap,
    next_start_per_turn,
    slot_offset,
)
from monitor.parts.jobs import add_interval_job, make_job_scheduler

T = TypeVar("T", bound=Hashable)


def _slots_until(target: Hashable, interval: float, until: float) -> int:
    """How many slots a target added at time 0 (no jitter) has in [0, until]."""
    t, n = slot_offset(target, interval), 0
    while t <= until:
        n += 1
        t += interval
    return n


@asynccontextmanager
async def _running(
    clock: FakeClock, run: Callable[[T], Awaitable[None]], interval: float, limit: int = 10
) -> AsyncIterator[Dispatcher[T]]:
    d: Dispatcher[T] = Dispatcher(run, lambda t: interval, limit=limit, jitter=0.0, clock=clock)
    task = asyncio.create_task(d.run_forever())
    try:
        yield d
    finally:
        await d.close()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def test_slot_offsets_spread_targets_over_the_interval() -> None:
    offsets = sorted(slot_offset(("m", f"http://h{i}", "health"), 30.0) for i in range(1000))
    assert offsets[0] >= 0 and offsets[-1] < 30
    # Every tenth of the interval holds roughly a tenth of the targets.
    buckets = [sum(1 for o in offsets if k * 3 <= o < (k + 1) * 3) for k in range(10)]
    assert min(buckets) > 60 and max(buckets) < 140


def test_slot_offset_is_stable_across_runs() -> None:
    assert slot_offset(("m", "h", "health"), 30) == slot_offset(("m", "h", "health"), 30)


async def test_each_target_runs_once_per_slot_of_its_interval() -> None:
    clock = FakeClock()
    runs: list[str] = []

    async def run(t: str) -> None:
        runs.append(t)

    async with _running(clock, run, 0.25) as d:
        for t in ("a", "b", "c"):
            d.add(t)
        await clock.advance(1.0)
    for t in ("a", "b", "c"):
        assert runs.count(t) == _slots_until(t, 0.25, 1.0)
        assert 4 <= runs.count(t) <= 5


async def test_a_target_runs_at_its_slot_on_the_clock() -> None:
    clock = FakeClock()
    at: list[float] = []

    async def run(t: str) -> None:
        at.append(clock.monotonic())

    async with _running(clock, run, 10.0) as d:
        d.add("x")
        await clock.advance(25.0)
    first = slot_offset("x", 10.0)
    assert at == [first, first + 10.0, first + 20.0][: len(at)] and len(at) == _slots_until("x", 10.0, 25.0)


async def test_concurrency_never_exceeds_the_limit() -> None:
    clock = FakeClock()
    running = 0
    peak = 0
    done = 0

    async def run(t: int) -> None:
        nonlocal running, peak, done
        running += 1
        peak = max(peak, running)
        await clock.sleep(0.05)
        running -= 1
        done += 1

    async with _running(clock, run, 0.1, limit=5) as d:
        for i in range(50):
            d.add(i)
        await clock.advance(0.5)
    assert peak == 5
    assert done >= 5 * (0.5 / 0.05) - 5  # the limit is used, not just respected


async def test_a_hung_target_does_not_delay_the_others_and_is_not_run_twice() -> None:
    clock = FakeClock()
    runs: dict[str, int] = {"hung": 0, "fast": 0}

    async def run(t: str) -> None:
        runs[t] += 1
        if t == "hung":
            await clock.sleep(10)

    async with _running(clock, run, 0.1) as d:
        d.add("hung")
        d.add("fast")
        await clock.advance(0.55)
        assert runs["hung"] == 1
        assert runs["fast"] == _slots_until("fast", 0.1, 0.55)
        assert d.stats.skipped_overrun == _slots_until("hung", 0.1, 0.55) - 1


async def test_soon_adds_one_extra_run_without_moving_the_slot() -> None:
    clock = FakeClock()
    at: list[float] = []

    async def run(t: str) -> None:
        at.append(clock.monotonic())

    async with _running(clock, run, 10.0) as d:
        d.add("x", first_within=0.0)
        await clock.advance(0.05)
        d.soon("x", 0.1)
        await clock.advance(10.0)
    assert at == pytest.approx([0.0, 0.15, 10.0])


async def test_removed_target_stops_running() -> None:
    clock = FakeClock()
    runs: list[str] = []

    async def run(t: str) -> None:
        runs.append(t)

    async with _running(clock, run, 0.1) as d:
        d.add("x", first_within=0.0)
        await clock.advance(0.15)
        assert runs == ["x", "x"]
        d.remove("x")
        await clock.advance(1.0)
    assert runs == ["x", "x"]


async def test_a_probe_made_before_a_restart_delays_the_first_run() -> None:
    clock = FakeClock()
    at: list[float] = []

    async def run(t: str) -> None:
        at.append(clock.monotonic())

    async with _running(clock, run, 30.0) as d:
        d.add("x", first_within=0.0, not_before=12.0)
        await clock.advance(11.9)
        assert at == []
        await clock.advance(0.2)
    assert at == [12.0]


async def test_a_shorter_interval_applies_from_the_next_slot() -> None:
    clock = FakeClock()
    at: list[float] = []
    interval = {"x": 10.0}

    async def run(t: str) -> None:
        at.append(clock.monotonic())

    d: Dispatcher[str] = Dispatcher(run, interval.__getitem__, limit=1, jitter=0.0, clock=clock)
    task = asyncio.create_task(d.run_forever())
    d.add("x", first_within=0.0)
    await clock.advance(1.0)
    interval["x"] = 2.0  # the host went down: it is re-probed sooner
    await clock.advance(20.0)
    await d.close()
    await asyncio.gather(task, return_exceptions=True)
    assert at[:3] == [0.0, 10.0, 12.0]


async def test_every_dispatch_is_counted_and_on_time() -> None:
    clock = FakeClock()

    async def run(t: int) -> None:
        return None

    async with _running(clock, run, 1.0) as d:
        for i in range(20):
            d.add(i)
        await clock.advance(3.0)
        assert d.stats.dispatched == sum(_slots_until(i, 1.0, 3.0) for i in range(20))
        assert d.stats.max_lag_seconds == 0.0 and d.stats.in_flight == 0


async def test_many_targets_due_at_once_are_started_in_batches_between_turns_of_the_loop() -> None:
    clock = FakeClock()
    seen: list[int] = []

    async def run(t: str) -> None:
        pass

    async with _running(clock, run, 10.0, limit=5000) as d:

        async def spin() -> None:
            while True:
                seen.append(d.stats.dispatched)
                await asyncio.sleep(0)

        spinner = asyncio.create_task(spin())
        await asyncio.sleep(0)  # the spinner is turning before anything is due
        for i in range(10 * START_PER_TURN):
            d.add(f"t{i}", first_within=0.0)  # every one due now
        await clock.advance(0.001)
        spinner.cancel()
    assert d.stats.dispatched == 10 * START_PER_TURN
    jumps = [b - a for a, b in itertools.pairwise(seen)]
    assert seen[0] == 0 and max(jumps) <= START_PER_TURN  # never thousands of starts in one turn of the loop


def test_a_turn_over_budget_halves_the_next_batch_of_starts() -> None:
    assert next_start_per_turn(100, TURN_BUDGET_S * 2) == 50
    assert next_start_per_turn(MIN_START_PER_TURN, 10.0) == MIN_START_PER_TURN  # never stops


def test_short_turns_grow_the_batch_of_starts_up_to_its_cap() -> None:
    assert next_start_per_turn(40, 0.0) == 50
    assert next_start_per_turn(START_PER_TURN, 0.0) == START_PER_TURN


async def _starts_per_turn(cost_s: float, targets: int) -> list[int]:
    """Probes that each hold the loop `cost_s` (on the fake clock), all due at once: how many
    were started in each turn of the loop."""
    clock = FakeClock()
    seen: list[int] = []

    async def run(t: str) -> None:
        clock.spend(cost_s)

    async with _running(clock, run, 1000.0, limit=targets) as d:

        async def spin() -> None:
            while True:
                seen.append(d.stats.dispatched)
                await asyncio.sleep(0)

        spinner = asyncio.create_task(spin())
        await asyncio.sleep(0)
        for i in range(targets):
            d.add(f"t{i}", first_within=0.0)
        while d.stats.dispatched < targets:
            await clock.advance(0.001)
        spinner.cancel()
    return [b - a for a, b in itertools.pairwise(seen) if b > a]


async def test_dear_probes_are_started_a_few_at_a_time_so_no_turn_of_the_loop_runs_long() -> None:
    cost = 0.005  # each probe holds the loop 5 ms: 200 in one turn would stall it a second
    batches = await _starts_per_turn(cost, 2000)
    assert max(batches) * cost <= 2 * TURN_BUDGET_S
    later = batches[5:]  # after a few turns: under the budget on average (a sawtooth around it)
    assert sum(later) / len(later) * cost <= TURN_BUDGET_S


async def test_cheap_probes_are_started_up_to_the_full_batch_per_turn() -> None:
    batches = await _starts_per_turn(0.0, 4000)
    assert max(batches) == START_PER_TURN


def test_a_sampled_turn_over_budget_halves_the_probes_allowed_in_flight() -> None:
    assert next_in_flight_cap(256, TURN_BUDGET_S * 2, 256) == 128
    assert next_in_flight_cap(MIN_IN_FLIGHT, 10.0, 256) == MIN_IN_FLIGHT
    assert next_in_flight_cap(4, 10.0, 4) == 4  # never above the setting


def test_short_turns_give_back_the_concurrency_setting() -> None:
    assert next_in_flight_cap(64, 0.0, 256) == 72
    assert next_in_flight_cap(256, 0.0, 256) == 256


async def _in_flight_with_turns_of(turn_s: float) -> int:
    """Probes that never end, 1,000 due at once, max_concurrency 256, on a loop each of whose turns
    holds it `turn_s` (other work) for a second before and two after: how many are in flight."""
    clock = FakeClock()
    never = asyncio.Event()

    async def run(t: str) -> None:
        await never.wait()

    async def other_work() -> None:
        while True:
            clock.spend(turn_s)
            await asyncio.sleep(0)

    async with _running(clock, run, 1000.0, limit=256) as d:
        hog = asyncio.create_task(other_work())
        for _ in range(20):  # the dispatcher times some turns first
            await clock.advance(0.05)
        for i in range(1000):
            d.add(f"t{i}", first_within=0.0)
        for _ in range(40):
            await clock.advance(0.05)
        in_flight = d.stats.in_flight
        hog.cancel()
    return in_flight


async def test_a_loop_whose_turns_run_long_gets_fewer_probes_in_flight() -> None:
    assert await _in_flight_with_turns_of(0.0) == 256
    assert await _in_flight_with_turns_of(0.1) <= 64


async def test_a_periodic_job_cancelled_at_stop_ends_quietly() -> None:
    started = asyncio.Event()

    async def slow_run() -> None:
        started.set()
        await asyncio.Event().wait()

    scheduler = make_job_scheduler(SchedulerStats())
    add_interval_job(scheduler, slow_run, 60, "discovery")
    job = scheduler.get_job("discovery")
    assert job is not None
    task = asyncio.create_task(job.func())
    await started.wait()
    task.cancel()
    await task  # no CancelledError reaches APScheduler, which would log it with a traceback
    assert task.done() and not task.cancelled()


def _probe_tasks() -> int:
    """Probe tasks alive now (each runs the dispatcher's `_guarded`), whatever they wait on."""
    code = Dispatcher._guarded.__code__
    return sum(1 for t in asyncio.all_tasks() if getattr(t.get_coro(), "cr_code", None) is code)


async def test_due_targets_wait_in_the_heap_not_as_tasks_and_start_in_slot_order() -> None:
    clock = FakeClock()
    started: list[str] = []
    most_tasks = 0

    async def run(t: str) -> None:
        nonlocal most_tasks
        started.append(t)
        most_tasks = max(most_tasks, _probe_tasks())
        await clock.sleep(0.001)

    targets = [f"t{i}" for i in range(1000)]
    async with _running(clock, run, 60.0, limit=2) as d:
        for t in targets:
            d.add(t, first_within=1.0)  # slots spread over the first second
        await clock.advance(1.0)  # every one is due now, all but a few still waiting
        assert _probe_tasks() <= 2 and d.stats.queued >= 900
        slots = {t: slot_offset(t, 1.0) for t in targets}
        await clock.advance(2.0)  # 1,000 probes of 1 ms each, two at a time
    assert most_tasks <= 2
    assert started == sorted(targets, key=slots.__getitem__)
