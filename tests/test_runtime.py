"""The runtime: garbage collection on an injected clock, the loop choice, and no side effect on import."""

from __future__ import annotations

import asyncio
import gc
import subprocess
import sys
import weakref
from dataclasses import replace

import pytest

from monitor.core.clock import FakeClock
from monitor.runtime import NO_AUTOMATIC_FULL, GcPace, loop_factory, loop_name, pace_gc, run

PACE = GcPace(young_s=1.0, middle_every=3, full_s=10.0, thaw_s=30.0, thaw_below=10**9)


class _Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the cyclic collector frees it


def _collections() -> list[int]:
    return [g["collections"] for g in gc.get_stats()]


async def _stop(pacer: asyncio.Task[None]) -> None:
    pacer.cancel()
    await asyncio.gather(pacer, return_exceptions=True)


async def test_while_pacing_young_collections_are_automatic_and_full_ones_never_are() -> None:
    clock = FakeClock()
    pacer = asyncio.create_task(pace_gc(PACE, clock))
    await clock.settle()
    before = _collections()
    kept = [[i] for i in range(300_000)]  # long-lived growth that would start full collections
    after = _collections()
    await _stop(pacer)
    assert len(kept) == 300_000
    assert after[0] - before[0] >= 100  # young ones, of about PACE.young_objects each
    assert after[2] == before[2]  # no full one: those come only on the clock


async def test_pacing_puts_the_collector_settings_back_when_it_stops() -> None:
    settings = (gc.isenabled(), gc.get_threshold())
    clock = FakeClock()
    pacer = asyncio.create_task(pace_gc(PACE, clock))
    await clock.settle()
    pacing = (gc.isenabled(), gc.get_threshold())
    await _stop(pacer)
    assert pacing == (True, (PACE.young_objects, 10, NO_AUTOMATIC_FULL))
    assert (gc.isenabled(), gc.get_threshold()) == settings


async def test_every_generation_is_collected_on_its_schedule() -> None:
    clock = FakeClock()
    pacer = asyncio.create_task(pace_gc(PACE, clock))
    await clock.settle()
    before = _collections()
    await clock.advance(30)  # 30 ticks: full at 10, 20, 30; middle every 3rd of the others
    after = _collections()
    await _stop(pacer)
    young, middle, full = (a - b for a, b in zip(after, before, strict=True))
    # gc.get_stats counts a collection of generation g once, in g: 30 ticks = 3 full, 9 middle, 18 young.
    assert (full, middle) == (3, 9)
    assert young >= 18  # a young collection may also be triggered elsewhere, never fewer


async def test_nothing_is_collected_before_the_first_tick() -> None:
    clock = FakeClock()
    pacer = asyncio.create_task(pace_gc(PACE, clock))
    await clock.settle()
    before = _collections()
    await clock.advance(0.5)
    after = _collections()
    await _stop(pacer)
    assert after[1:] == before[1:]


async def test_cyclic_garbage_is_freed_while_pacing() -> None:
    clock = FakeClock()
    pacer = asyncio.create_task(pace_gc(PACE, clock))
    await clock.settle()
    node = _Node()
    gone = weakref.ref(node)
    del node
    await clock.advance(10)
    freed = gone() is None
    await _stop(pacer)
    assert freed


async def test_what_survives_a_full_collection_is_left_out_of_the_next_ones() -> None:
    clock = FakeClock()
    pacer = asyncio.create_task(pace_gc(PACE, clock))
    await clock.settle()
    before = gc.get_freeze_count()
    await clock.advance(10)  # the first full collection
    frozen = gc.get_freeze_count()
    await _stop(pacer)
    assert before == 0 and frozen > 0
    assert gc.get_freeze_count() == 0  # the process is left as it was


async def _frozen_cycle_outlives(pace: GcPace, seconds: float) -> tuple[bool, bool]:
    """A cycle alive at the first full collection (so frozen), dropped: (kept until just before
    `seconds`, gone at `seconds`)."""
    clock = FakeClock()
    pacer = asyncio.create_task(pace_gc(pace, clock))
    await clock.settle()
    node = _Node()
    gone = weakref.ref(node)
    await clock.advance(pace.full_s)  # alive at the first full collection: frozen
    del node
    await clock.advance(seconds - pace.full_s - 1)
    kept = gone() is not None
    await clock.advance(1)
    freed = gone() is None
    await _stop(pacer)
    return kept, freed


async def test_cyclic_garbage_that_was_frozen_is_freed_by_the_hourly_thaw_of_a_small_heap() -> None:
    kept, freed = await _frozen_cycle_outlives(PACE, PACE.thaw_s)
    assert kept and freed


async def test_a_large_frozen_heap_is_never_walked_whole() -> None:
    kept, freed = await _frozen_cycle_outlives(replace(PACE, thaw_below=0), PACE.thaw_s * 3)
    assert kept and not freed


async def test_collection_stays_off_after_pacing_if_it_was_off_before() -> None:
    gc.disable()
    try:
        clock = FakeClock()
        pacer = asyncio.create_task(pace_gc(PACE, clock))
        await clock.advance(2)
        await _stop(pacer)
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_run_uses_uvloop_when_installed_and_asyncio_when_not_wanted() -> None:
    pytest.importorskip("uvloop")

    async def name() -> str:
        return loop_name(asyncio.get_running_loop())

    assert run(name(), pace=None) == "uvloop"
    assert run(name(), pace=None, prefer_uvloop=False) == "asyncio"


def test_without_uvloop_the_loop_is_asyncio_s() -> None:
    assert loop_factory(prefer_uvloop=False) is None


def test_run_restores_the_collector_settings_when_it_returns() -> None:
    threshold = gc.get_threshold()

    async def pacing() -> tuple[int, int, int]:
        await asyncio.sleep(0)
        return gc.get_threshold()

    assert run(pacing(), prefer_uvloop=False)[2] == NO_AUTOMATIC_FULL
    assert gc.get_threshold() == threshold and gc.isenabled()


@pytest.mark.subprocess  # a fresh interpreter
def test_importing_the_package_changes_no_process_state() -> None:
    code = (
        "import gc, resource, asyncio\n"
        "before = (gc.isenabled(), gc.get_freeze_count(), resource.getrlimit(resource.RLIMIT_NOFILE),"
        " type(asyncio.get_event_loop_policy()).__module__)\n"
        "import monitor.cli, monitor.server, monitor.runtime, monitor.service, monitor.web.api\n"
        "after = (gc.isenabled(), gc.get_freeze_count(), resource.getrlimit(resource.RLIMIT_NOFILE),"
        " type(asyncio.get_event_loop_policy()).__module__)\n"
        "assert before == after, (before, after)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
