"""Work in steps on the running loop: a generator (`monitor.core.steps`) driven in slices, the
loop turning between them. Why not a worker thread: docs/performance.md."""

from __future__ import annotations

import asyncio
from typing import TypeVar

from monitor.core.steps import Steps

__all__ = ["SLICE_S", "Slices", "run_in_slices"]

T = TypeVar("T")

# How long work in steps holds the loop before it lets the loop turn.
SLICE_S = 0.02


class Slices:
    """Work on the loop cut in slices: `turn()` lets the loop turn once `slice_s` has passed
    since the last turn (0: at every call), and returns at once before that."""

    def __init__(self, slice_s: float = SLICE_S) -> None:
        self._loop = asyncio.get_running_loop()
        self._slice_s = slice_s
        self._ends = self._loop.time() + slice_s

    async def turn(self) -> None:
        if self._loop.time() >= self._ends:
            await asyncio.sleep(0)
            self._ends = self._loop.time() + self._slice_s


async def run_in_slices(steps: Steps[T], slice_s: float = SLICE_S) -> T:
    """Run `steps` on the loop, letting the loop turn once `slice_s` has passed since the last
    turn (0: after every step). Cancelled midway, the generator is closed."""
    slices = Slices(slice_s)
    try:
        while True:
            try:
                next(steps)
            except StopIteration as done:
                return done.value  # type: ignore[no-any-return]
            await slices.turn()
    finally:
        steps.close()
