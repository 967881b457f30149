"""What is process-wide, in one place: the event loop, the open-file limit and garbage collection.

Only the commands call `run` (once per process). Importing the package, or serving the monitor
from a library or a test, changes none of this.

- Event loop: uvloop's (libuv) when it is installed (`pip install 'libertai-monitor[fast]'`), else
  asyncio's. The benchmarks showed uvloop closes most of the p99 gap to blackbox_exporter.
- Open files: one kept-alive connection per host needs more descriptors than the usual soft limit
  of 1,024, so the soft limit is raised to the hard one.
- Garbage collection in small pieces. CPython's young collections are bounded here: one starts
  whenever `young_objects` (2,000) more container objects are alive than at the last one, and the
  pacer adds one every quarter second, because a monitor's state churns without growing (each
  probe replaces a host's health value and the old one is freed at once, so the count barely
  moves while the young generation fills with replacements). Each young collection then walks a
  few thousand objects: well under a millisecond. CPython's own full collections are switched off
  (its third threshold set out of reach): they come whenever the long-lived objects have grown by
  a quarter and walk all of them, over a second at 100,000 probed hosts (1.8 million objects).
  Instead, every `full_s` (half a second) the oldest generation is collected and its survivors frozen
  (`gc.freeze`), so that each of these collections walks only what outlived the young ones since
  the last: the hosts' states replaced in those seconds, tens of milliseconds at 100,000 hosts.
  Frozen objects are still freed when their last reference goes; only a reference cycle among
  them would wait for a walk of everything. The service makes none that were found: a failed
  probe's tracebacks are dropped (`http.drop_tracebacks`), upserts are built once (their table
  aliases hold cycles), and its state is values without cycles (tests check all three); a walk of
  everything after 70 s at 100,000 probed hosts found no garbage among 1.6 million frozen objects.
  As a safety net that walk runs once a day while there are at most `thaw_below` frozen objects
  (130 ms for a service of 50 hosts, 110,000 objects, on a 2-core machine); above that it never
  runs, because nothing bounds how long it takes (1.5-1.6 s at 100,000 probed hosts).
  History: a young threshold of 50,000 let collections walk 100,000-200,000 churned objects at
  5,000 hosts (60-150 ms stalls, added to the time to first token of every probe in flight); young
  collections only on the clock, every quarter second, were a millisecond or two at 5,000 hosts
  but 60-125 ms at 100,000 probed hosts, where a quarter second's failed probes left about 150,000
  objects of cyclic garbage (exceptions, tracebacks and their frames); a full collection every
  ten minutes took 1.3-2.3 s there. `settle()`, once the service has started, moves the start-up
  objects (modules, restored windows) out of the collector's way for good.
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
