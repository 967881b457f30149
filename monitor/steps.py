"""Work done on the event loop in steps: a generator that yields between steps of a few
milliseconds, and returns its result.

At 100,000 hosts an answer takes a second of CPU to build. In a worker thread it fought the loop
for the GIL: every probe's socket call waited up to a switch interval for it, probe steps took
5-9 ms instead of well under one, and the loop's turns grew to 0.5-0.9 s. In one go on the loop it
would stall everything for the whole second. In steps, the loop turns every `SLICE_S`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Generator, Iterable
from typing import TypeVar

__all__ = ["SLICE_S", "Slices", "Steps", "finish", "mapped", "run_in_slices"]

T = TypeVar("T")
U = TypeVar("U")

Steps = Generator[None, None, T]

# How long work in steps holds the loop before it lets the loop turn.
SLICE_S = 0.02


def finish(steps: Steps[T]) -> T:
    """Run `steps` to the end at once (start-up, tests, callers off the loop)."""
    while True:
        try:
            next(steps)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]


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


def mapped(items: Iterable[T], fn: Callable[[T], U], per_step: int) -> Steps[list[U]]:
    """`[fn(x) for x in items]`, a step every `per_step` items."""
    out: list[U] = []
    for i, item in enumerate(items, 1):
        out.append(fn(item))
        if i % per_step == 0:
            yield None
    return out
