"""Long work as a generator of steps: it yields between steps of a few milliseconds and returns its
result. One form of each such function; a driver decides how it runs: `finish` at once (start-up,
tests, small inputs), `monitor.slices.run_in_slices` on the event loop. Why steps rather than a
worker thread: docs/performance.md."""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterable
from typing import TypeVar

__all__ = ["Steps", "finish", "for_each", "mapped"]

T = TypeVar("T")
U = TypeVar("U")

Steps = Generator[None, None, T]


def finish(steps: Steps[T]) -> T:
    """Run `steps` to the end at once (start-up, tests, callers off the loop)."""
    while True:
        try:
            next(steps)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]


def for_each(items: Iterable[T], fn: Callable[[T], object], per_step: int) -> Steps[None]:
    """`for x in items: fn(x)`, a step every `per_step` items."""
    for i, item in enumerate(items, 1):
        fn(item)
        if i % per_step == 0:
            yield None


def mapped(items: Iterable[T], fn: Callable[[T], U], per_step: int) -> Steps[list[U]]:
    """`[fn(x) for x in items]`, a step every `per_step` items."""
    out: list[U] = []
    for i, item in enumerate(items, 1):
        out.append(fn(item))
        if i % per_step == 0:
            yield None
    return out
