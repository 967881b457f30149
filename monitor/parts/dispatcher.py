"""Probes on the clock: one dispatcher over a heap gives every (model, host, kind) target its slot.

Probes are not APScheduler jobs (those are the few periodic ones, `monitor.parts.jobs`): there are
tens of thousands of targets, each on its own slot, and a job per target costs far more than one
heap entry. The dispatcher gives every target a fixed slot within its interval (spread evenly by a
stable hash, plus jitter that only delays), and never lets a hung host hold back the others: each
probe is its own task with its own timeout. Backpressure: a probe task is created only when one of
the `limit` slots is free; targets due meanwhile wait in the heap (one tuple each), not as tasks
waiting on a semaphore, which every garbage collection would walk and the stop would have to
cancel (see docs/performance.md).
"""

from __future__ import annotations

import asyncio
import heapq
import random
import zlib
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

from monitor.core.clock import SYSTEM_CLOCK, Clock
from monitor.logging import get_logger

log = get_logger("monitor.parts.dispatcher")
T = TypeVar("T", bound=Hashable)


@dataclass(slots=True)
class SchedulerStats:
    """Counters read by /metrics at scrape time."""

    dispatched: int = 0
    skipped_overrun: int = 0  # a target was due while its previous probe still ran
    lag_seconds: float = 0.0  # how late the most recent dispatch was against its slot
    max_lag_seconds: float = 0.0  # worst lag since the last scrape read it
    in_flight: int = 0
    queued: int = 0
    job_errors: int = 0
    job_missed: int = 0
    job_max_instances: int = 0

    def take_max_lag(self) -> float:
        value, self.max_lag_seconds = self.max_lag_seconds, self.lag_seconds
        return value


def slot_offset(key: Hashable, interval: float) -> float:
    """A stable position in [0, interval) for a target, so restarts keep hosts spread the same way."""
    digest = zlib.crc32(repr(key).encode())
    return (digest / 2**32) * interval


# Probes started between two turns of the event loop when many are due at once: at most
# START_PER_TURN, fewer while the turns those starts make take longer than TURN_BUDGET_S.
START_PER_TURN = 200
MIN_START_PER_TURN = 4
TURN_BUDGET_S = 0.04


def next_start_per_turn(current: int, turn_s: float) -> int:
    """How many probes to start in the next turn, after a turn of `turn_s` seconds followed a
    batch of `current` starts: halved when that turn was over budget, else a quarter more.

    A probe's first steps run in the turn after its start, and what they cost depends on what
    it meets (a refused connection about a millisecond of CPU on a busy loop, a TLS handshake
    several), so a fixed number of starts per turn is either too slow for cheap probes or a stall
    for dear ones; halving on a long turn keeps turns near the budget whatever a probe costs
    (docs/performance.md)."""
    return _follow_turn(current, turn_s, MIN_START_PER_TURN, START_PER_TURN, 4)


# How often the dispatcher times one turn of the loop, to set how many probes may be in flight.
TURN_SAMPLE_EVERY_S = 0.05
MIN_IN_FLIGHT = 8


def next_in_flight_cap(current: int, turn_s: float, limit: int) -> int:
    """How many probes may be in flight after a sampled turn of `turn_s` seconds: halved when the
    turn was over budget, else an eighth more, up to `limit` (the `max_concurrency` setting).

    Probes in flight end when their hosts answer, many in the same turn when many answer at once
    (a wave of refused connections): so many as may end together, so long may a turn be. A loop
    with time to spare keeps the whole `limit`."""
    return _follow_turn(current, turn_s, min(MIN_IN_FLIGHT, limit), limit, 8)


def _follow_turn(current: int, turn_s: float, low: int, high: int, growth: int) -> int:
    """Halved (not below `low`) after a turn over `TURN_BUDGET_S`, else grown by 1/`growth`
    (at least one, not above `high`)."""
    if turn_s > TURN_BUDGET_S:
        return max(low, current // 2)
    return min(high, current + max(1, current // growth))


class Dispatcher(Generic[T]):
    """Runs `run(target)` for each scheduled target at its slot, at most `limit` at once.

    `interval_of(target)` is asked after each dispatch, so a down host can be re-probed sooner.
    Every slot is on `clock` (monotonic seconds), so tests run it on a `FakeClock`.
    """

    def __init__(
        self,
        run: Callable[[T], Awaitable[None]],
        interval_of: Callable[[T], float],
        *,
        limit: int,
        jitter: float,
        rng: random.Random | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self._clock = clock
        self._run = run
        self._interval_of = interval_of
        self._limit = limit
        self._jitter = jitter
        self._rng = rng or random.Random()
        self._heap: list[tuple[float, int, T, int]] = []
        self._slot: dict[T, float] = {}  # target -> its current slot (the clock's monotonic seconds)
        self._gen: dict[T, int] = {}
        self._running: set[T] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._seq = 0
        self._sleeping: asyncio.Future[None] | None = None  # the dispatcher's wait for the next slot
        self._closed = False
        self._per_turn = MIN_START_PER_TURN * 4  # a slow start: grows while turns stay short
        self._cap = limit  # probes in flight at most now (see next_in_flight_cap)
        self.stats = SchedulerStats()

    def __len__(self) -> int:
        return len(self._slot)

    def __contains__(self, target: object) -> bool:
        return target in self._slot

    def add(self, target: T, *, first_within: float | None = None, not_before: float = 0.0) -> None:
        """Start probing `target`; its first run comes within `first_within` s (default: its
        interval), and not sooner than `not_before` s from now (a probe made before a restart)."""
        if target in self._slot:
            return
        interval = self._interval_of(target)
        span = interval if first_within is None else min(first_within, interval)
        slot = self._clock.monotonic() + max(slot_offset(target, span), min(not_before, interval))
        self._slot[target] = slot
        self._gen[target] = self._gen.get(target, 0) + 1
        self._push(slot, target)

    def next_due(self, target: T) -> float | None:
        """When `target` is next due (the clock's monotonic seconds), None if it is not scheduled."""
        return self._slot.get(target)

    def remove(self, target: T) -> None:
        """Stop probing `target`; a heap entry left behind is ignored when it comes up."""
        self._slot.pop(target, None)
        self._gen[target] = self._gen.get(target, 0) + 1

    def soon(self, target: T, delay: float) -> None:
        """One extra run after `delay` (a confirmation), leaving the target's slot as it is."""
        if target in self._slot:
            self._push(self._clock.monotonic() + delay, target, extra=True)

    def _push(self, due: float, target: T, *, extra: bool = False) -> None:
        self._seq += 1
        gen = -1 if extra else self._gen[target]
        heapq.heappush(self._heap, (due, self._seq, target, gen))
        self.stats.queued = len(self._heap)
        if self._heap[0][1] == self._seq and self._sleeping is not None:
            self._sleeping.cancel()  # a sooner target: the wait ends now, and is recomputed

    async def run_forever(self) -> None:
        sampler = asyncio.create_task(self._sample_turns())
        try:
            await self._dispatch()
        finally:
            sampler.cancel()

    async def _sample_turns(self) -> None:
        while True:
            await self._clock.sleep(TURN_SAMPLE_EVERY_S)
            began = self._clock.monotonic()
            await asyncio.sleep(0)  # resumes after one whole turn of the loop
            self._cap = next_in_flight_cap(self._cap, self._clock.monotonic() - began, self._limit)

    async def _dispatch(self) -> None:
        while not self._closed:
            now = self._clock.monotonic()
            started = 0
            while self._heap and self._heap[0][0] <= now:
                if len(self._running) >= self._cap:
                    break  # no free slot: the due targets stay in the heap until a probe ends
                if started >= self._per_turn:
                    # Far behind (a huge listing just arrived): the loop gets a turn between
                    # batches, or starting them all would stall it for seconds.
                    started = 0
                    turn_began = self._clock.monotonic()
                    await asyncio.sleep(0)
                    self._per_turn = next_start_per_turn(self._per_turn, self._clock.monotonic() - turn_began)
                    if self._closed:
                        break
                    continue
                due, _, target, gen = heapq.heappop(self._heap)
                if target not in self._slot or (gen != -1 and gen != self._gen[target]):
                    continue
                if gen != -1:
                    # The next slot is fixed now, not when this probe ends, so slots never drift.
                    interval = self._interval_of(target)
                    slot = max(self._slot[target] + interval, now)
                    self._slot[target] = slot
                    self._push(slot + self._rng.uniform(0, self._jitter * interval), target)
                if target in self._running:
                    self.stats.skipped_overrun += 1
                    continue
                self._note_lag(now - due)
                self._start(target)
                started += 1
            self.stats.queued = len(self._heap)
            timeout = (self._heap[0][0] - self._clock.monotonic()) if self._heap else 3600.0
            if timeout <= 0 and len(self._running) >= self._cap:
                timeout = 3600.0  # due but no free slot: the first probe to end wakes the dispatcher
            if timeout > 0:
                await self._sleep_or_wake(timeout)

    async def _sleep_or_wake(self, seconds: float) -> None:
        """Wait `seconds` on the clock, or less if a sooner target is pushed (or `close` is
        called) meanwhile: they cancel the wait, which `asyncio.wait` takes as its end, while a
        cancellation of the dispatcher itself still propagates."""
        sleeping = asyncio.ensure_future(self._clock.sleep(seconds))
        self._sleeping = sleeping
        try:
            await asyncio.wait((sleeping,))
        finally:
            self._sleeping = None
            sleeping.cancel()

    def _note_lag(self, lag: float) -> None:
        self.stats.dispatched += 1
        self.stats.lag_seconds = lag
        self.stats.max_lag_seconds = max(self.stats.max_lag_seconds, lag)

    def _start(self, target: T) -> None:
        self._running.add(target)
        task = asyncio.create_task(self._guarded(target))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _guarded(self, target: T) -> None:
        self.stats.in_flight += 1
        try:
            await self._run(target)
        except asyncio.CancelledError:
            raise
        except Exception:
            # A probe never raises by contract; this is a bug, logged, and the loop goes on.
            log.exception("probe task failed", target=repr(target))
        finally:
            self.stats.in_flight -= 1
            self._running.discard(target)
            self._slot_freed()

    def _slot_freed(self) -> None:
        """A probe ended: if targets are due, the dispatcher waiting for a free slot wakes now."""
        sleeping = self._sleeping
        if sleeping is not None and self._heap and self._heap[0][0] <= self._clock.monotonic():
            sleeping.cancel()

    async def close(self) -> None:
        """Stop dispatching and cancel the probes in flight (APScheduler would not wait for them)."""
        self._closed = True
        if self._sleeping is not None:
            self._sleeping.cancel()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
