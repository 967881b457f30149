"""The one source of time for the service, the scheduler, the dispatcher and the simulator.

Every read of the time goes through a `Clock` handed in at construction, so decisions and
scheduling can be tested on a `FakeClock` that moves only when a test says so: no test sleeps for
real to see a timing, and none depends on how busy the machine is.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from typing import Protocol


class Clock(Protocol):
    def time(self) -> float:
        """Wall-clock seconds since the epoch (timestamps stored and shown)."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back (intervals, deadlines)."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait `seconds` on this clock."""
        ...


class SystemClock:
    """The real clock."""

    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


SYSTEM_CLOCK: Clock = SystemClock()


class FakeClock:
    """A clock that moves only by `advance`: sleepers wake, in order, as their time comes.

    `await clock.advance(5)` moves time forward 5 s, waking every sleeper whose deadline passes and
    letting the woken tasks run (each gets its turns of the loop) before time moves further, so a
    test reads the state a real run would have at that instant.
    """

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._wall0 = start
        self._now = 0.0
        self._seq = itertools.count()
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []

    def time(self) -> float:
        return self._wall0 + self._now

    def monotonic(self) -> float:
        return self._now

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self._now + seconds, next(self._seq), fut))
        await fut

    @property
    def sleepers(self) -> int:
        return sum(1 for _, _, f in self._sleepers if not f.done())

    async def settle(self, turns: int = 100) -> None:
        """Let the loop run the ready tasks (no time passes)."""
        for _ in range(turns):
            await asyncio.sleep(0)

    def spend(self, seconds: float) -> None:
        """Time passes inside a step (work that holds the loop): no sleeper wakes until the
        next `advance`, as none could while the step ran."""
        self._now += seconds

    async def advance(self, seconds: float, *, step: float | None = None) -> None:
        """Move time forward by `seconds`, waking sleepers in deadline order on the way."""
        target = self._now + seconds
        await self.settle()
        while True:
            while self._sleepers and self._sleepers[0][2].done():
                heapq.heappop(self._sleepers)  # cancelled sleepers
            if not self._sleepers or self._sleepers[0][0] > target:
                break
            deadline, _, fut = heapq.heappop(self._sleepers)
            self._now = max(self._now, deadline)
            fut.set_result(None)
            await self.settle()
        self._now = max(self._now, target)  # steps may have spent more meanwhile
        await self.settle()
