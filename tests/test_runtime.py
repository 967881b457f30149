"""The runtime: garbage collection on an injected clock, the loop choice, and no side effect on import."""

from __future__ import annotations

import asyncio
import gc
import subprocess
import sys
import weakref

import pytest

from monitor.clock import FakeClock
from monitor.runtime import GcPace, loop_factory, loop_name, pace_gc, run

PACE = GcPace(young_s=1.0, middle_every=3, full_s=10.0)


class _Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the cyclic collector frees it


def _collections() -> list[int]:
    return [g["collections"] for g in gc.get_stats()]


async def _stop(pacer: asyncio.Task[None]) -> None:
    pacer.cancel()
    await asyncio.gather(pacer, return_exceptions=True)


async def test_automatic_collection_is_off_while_pacing_and_back_after() -> None:
    assert gc.isenabled()
    clock = FakeClock()
    pacer = asyncio.create_task(pace_gc(PACE, clock))
    await clock.settle()
    assert not gc.isenabled()
    await _stop(pacer)
    assert gc.isenabled()


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


async def test_cyclic_garbage_that_outlived_a_full_collection_is_freed_by_the_thaw() -> None:
    clock = FakeClock()
    pacer = asyncio.create_task(pace_gc(PACE, clock))
    await clock.settle()
    node = _Node()
    gone = weakref.ref(node)
    await clock.advance(10)  # alive at the first full collection: frozen
    del node
    await clock.advance(10 * (PACE.thaw_every - 2))
    kept = gone() is not None
    await clock.advance(10)  # the thaw
    freed = gone() is None
    await _stop(pacer)
    assert kept and freed


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


def test_run_restores_automatic_collection_when_it_returns() -> None:
    async def pacing() -> bool:
        await asyncio.sleep(0)
        return gc.isenabled()

    assert run(pacing(), prefer_uvloop=False) is False
    assert gc.isenabled()


def test_importing_the_package_changes_no_process_state() -> None:
    code = (
        "import gc, resource, asyncio\n"
        "before = (gc.isenabled(), gc.get_freeze_count(), resource.getrlimit(resource.RLIMIT_NOFILE),"
        " type(asyncio.get_event_loop_policy()).__module__)\n"
        "import monitor.cli, monitor.server, monitor.runtime, monitor.service, monitor.api\n"
        "after = (gc.isenabled(), gc.get_freeze_count(), resource.getrlimit(resource.RLIMIT_NOFILE),"
        " type(asyncio.get_event_loop_policy()).__module__)\n"
        "assert before == after, (before, after)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
