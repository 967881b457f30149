"""What is process-wide, in one place: the event loop, the open-file limit and garbage collection.

Only the commands call `run` (once per process). Importing the package, or serving the monitor
from a library or a test, changes none of this.

- Event loop: uvloop's (libuv) when it is installed (`pip install 'libertai-monitor[fast]'`), else
  asyncio's. The benchmarks showed uvloop closes most of the p99 gap to blackbox_exporter.
- Open files: one kept-alive connection per host needs more descriptors than the usual soft limit
  of 1,024, so the soft limit is raised to the hard one.
- Garbage collection paced by the clock instead of by allocations. CPython starts a young
  collection when allocations outnumber deallocations by a threshold. A monitor's state churns
  without growing: each probe replaces a host's health value with a new one and the old one is
  freed at once, so the count barely moves while the young generation fills with the replacements.
  At 5,000 hosts (with the threshold raised to 50,000) a collection came every 30-60 s and walked
  100,000-200,000 young objects: a 60-150 ms stall of the event loop, added to the time to first
  token of every probe in flight. On the clock, the young generation is collected four times a
  second (a millisecond or two: that quarter second's churn), the middle one every other time
  (about 5 ms), and everything every ten minutes. Automatic collection is off meanwhile and comes
  back when the pacer stops. Measured with bench/accuracy.py at 5,000 hosts: TTFT error p99 from
  76-205 ms to 10-17 ms. `settle()`, once the service has started, moves the start-up objects
  (modules, restored windows) out of the collector's way for good (full collections of ~200 ms
  every few seconds were the largest stalls at 5,000 hosts before this).
- The survivors of each full collection are frozen (`gc.freeze`): all alive at that instant, so the
  next full collections walk only what came since. At 100,000 probed hosts a full collection took
  760 ms, and 180 ms once its survivors were frozen (tests/faults/measure_service_stall.py). A
  frozen object that later dies in a reference cycle is only freed by a thaw: every `thaw_every`-th
  full collection unfreezes first and walks everything (hourly by default, not every 10 minutes).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import resource
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

from monitor.clock import SYSTEM_CLOCK, Clock

__all__ = ["GcPace", "loop_factory", "loop_name", "pace_gc", "raise_open_file_limit", "run", "settle"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class GcPace:
    young_s: float = 0.25  # generation 0
    middle_every: int = 2  # every n-th collection also takes generation 1
    full_s: float = 600.0  # generation 2: the cyclic garbage that outlived the others
    thaw_every: int = 6  # every n-th full collection also walks what earlier ones froze


async def pace_gc(pace: GcPace = GcPace(), clock: Clock = SYSTEM_CLOCK) -> None:
    """Run until cancelled: collect on the clock, with automatic collection off meanwhile."""
    was_enabled = gc.isenabled()
    was_frozen = gc.get_freeze_count() > 0  # `settle` froze the start-up objects: they stay so
    gc.disable()
    try:
        n = fulls = 0
        last_full = clock.monotonic()
        while True:
            await clock.sleep(pace.young_s)
            n += 1
            if clock.monotonic() - last_full >= pace.full_s:
                last_full = clock.monotonic()
                fulls += 1
                if fulls % pace.thaw_every == 0:
                    gc.unfreeze()
                gc.collect(2)
                gc.freeze()  # every survivor is alive now: later full collections skip them
            else:
                gc.collect(1 if n % pace.middle_every == 0 else 0)
    finally:
        if not was_frozen:
            gc.unfreeze()
        if was_enabled:
            gc.enable()


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
