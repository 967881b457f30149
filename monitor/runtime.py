"""What is process-wide, in one place: the event loop, the open-file limit and garbage collection.

Only the commands call `run` (once per process). Importing the package, or serving the monitor
from a library or a test, changes none of this.

- Event loop: uvloop's (libuv) when it is installed (`pip install 'libertai-monitor[fast]'`), else
  asyncio's (why: docs/performance.md, "still misses").
- Open files: one kept-alive connection per host needs more descriptors than the usual soft limit
  of 1,024, so the soft limit is raised to the hard one.
- Garbage collection in small pieces, because a monitor's state churns without growing (each
  probe replaces a host's health value), which CPython's allocation-count thresholds handle badly.
  Young collections are automatic, one whenever `young_objects` (2,000) more container objects are
  alive than at the last, plus one every quarter second: each walks a few thousand objects.
  CPython's own full collections are off (they walk every long-lived object, over a second for a
  large fleet); instead, every `full_s` the oldest generation is collected and its survivors
  frozen (`gc.freeze`), so each collection walks only what outlived the young ones since the last.
  Frozen objects are still freed by reference counting; only a cycle among them waits for a walk
  of everything, and the service makes none that were found (a failed probe's tracebacks are
  dropped, upserts are built once, its state is values without cycles: tests check all three).
  As a safety net that walk runs once a day while at most `thaw_below` objects are frozen, never
  above, because nothing bounds how long it takes. `settle()`, once the service has started, moves
  the start-up objects out of the collector's way for good. Figures and what was tried before:
  docs/performance.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import resource
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

from monitor.core.clock import SYSTEM_CLOCK, Clock

__all__ = ["GcPace", "loop_factory", "loop_name", "pace_gc", "raise_open_file_limit", "run", "settle"]

T = TypeVar("T")


# CPython's third threshold, out of reach: it never starts a full collection of its own.
NO_AUTOMATIC_FULL = 2**30


@dataclass(frozen=True, slots=True)
class GcPace:
    young_objects: int = 2_000  # an automatic young collection once this many more objects live
    young_s: float = 0.25  # and one on the clock (generation 0), whatever the count
    middle_every: int = 2  # every n-th collection on the clock also takes generation 1
    full_s: float = 0.5  # generation 2, what is not frozen (what outlived the young ones), then frozen
    thaw_s: float = 86_400.0  # this often, a collection of everything, frozen objects too...
    thaw_below: int = 250_000  # ...when there are at most this many of them (it stays short)


async def pace_gc(pace: GcPace = GcPace(), clock: Clock = SYSTEM_CLOCK) -> None:
    """Run until cancelled: small young collections, automatic and on the clock, and the full
    ones only on the clock. The collector's settings are put back when it stops."""
    was_enabled = gc.isenabled()
    was_threshold = gc.get_threshold()
    was_frozen = gc.get_freeze_count() > 0  # `settle` froze the start-up objects: they stay so
    gc.set_threshold(pace.young_objects, 10, NO_AUTOMATIC_FULL)
    gc.enable()
    try:
        n = 0
        last_full = last_thaw = clock.monotonic()
        while True:
            await clock.sleep(pace.young_s)
            n += 1
            now = clock.monotonic()
            if now - last_full >= pace.full_s:
                last_full = now
                if now - last_thaw >= pace.thaw_s and gc.get_freeze_count() <= pace.thaw_below:
                    last_thaw = now
                    gc.unfreeze()
                gc.collect(2)
                gc.freeze()  # every survivor is alive now: later full collections skip them
            else:
                gc.collect(1 if n % pace.middle_every == 0 else 0)
    finally:
        if not was_frozen:
            gc.unfreeze()
        gc.set_threshold(*was_threshold)
        if not was_enabled:
            gc.disable()


def raise_open_file_limit() -> tuple[int, int]:
    """Raise the soft limit of open files to the hard one; return (soft, hard) as they end up."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        with contextlib.suppress(ValueError, OSError):  # not allowed here: the soft limit stays
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def settle() -> None:
    """Once started: collect, then keep everything alive so far out of later collections."""
    gc.collect()
    gc.freeze()


def loop_factory(prefer_uvloop: bool = True) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop factory when it is installed (and wanted), else None (asyncio's own loop)."""
    if not prefer_uvloop:
        return None
    try:
        import uvloop
    except ImportError:
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def loop_name(loop: asyncio.AbstractEventLoop) -> str:
    """'uvloop' or 'asyncio', for the start-up log line."""
    return "uvloop" if type(loop).__module__.startswith("uvloop") else "asyncio"


def run(main: Coroutine[Any, Any, T], *, pace: GcPace | None = GcPace(), prefer_uvloop: bool = True) -> T:
    """Run `main` as the process's one event loop: raised file limit, paced collection, uvloop."""
    raise_open_file_limit()

    async def paced() -> T:
        pacer = asyncio.create_task(pace_gc(pace), name="gc-pacer") if pace is not None else None
        try:
            return await main
        finally:
            if pacer is not None:
                pacer.cancel()
                await asyncio.gather(pacer, return_exceptions=True)

    with asyncio.Runner(loop_factory=loop_factory(prefer_uvloop)) as runner:
        return runner.run(paced())
