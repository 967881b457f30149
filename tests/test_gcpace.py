"""Garbage collection on the clock: young collections every tick, automatic ones off meanwhile."""

from __future__ import annotations

import asyncio
import gc
import weakref

from monitor.gcpace import GcPace, pace_gc

FAST = GcPace(young_s=0.01, middle_every=3, full_s=0.05)


class _Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the cyclic collector frees it


def _collections() -> list[int]:
    return [g["collections"] for g in gc.get_stats()]


async def test_automatic_collection_is_off_while_pacing_and_back_after() -> None:
    assert gc.isenabled()
    pacer = asyncio.create_task(pace_gc(FAST))
    await asyncio.sleep(0)
    assert not gc.isenabled()
    pacer.cancel()
    await asyncio.gather(pacer, return_exceptions=True)
    assert gc.isenabled()


async def test_every_generation_is_collected_on_its_schedule() -> None:
    before = _collections()
    pacer = asyncio.create_task(pace_gc(FAST))
    await asyncio.sleep(0.3)
    pacer.cancel()
    await asyncio.gather(pacer, return_exceptions=True)
    young, middle, full = (a - b for a, b in zip(_collections(), before, strict=True))
    assert young >= 5 and middle >= 2 and full >= 2


async def test_cyclic_garbage_is_freed_while_pacing() -> None:
    pacer = asyncio.create_task(pace_gc(FAST))
    await asyncio.sleep(0)
    node = _Node()
    gone = weakref.ref(node)
    del node
    await asyncio.sleep(0.1)
    freed = gone() is None
    pacer.cancel()
    await asyncio.gather(pacer, return_exceptions=True)
    assert freed


async def test_collection_stays_off_after_pacing_if_it_was_off_before() -> None:
    gc.disable()
    try:
        pacer = asyncio.create_task(pace_gc(FAST))
        await asyncio.sleep(0.02)
        pacer.cancel()
        await asyncio.gather(pacer, return_exceptions=True)
        assert not gc.isenabled()
    finally:
        gc.enable()
