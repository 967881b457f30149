"""The monitor's stop is bounded whatever the fleet's size (issue 10): on a `FakeClock`."""

from __future__ import annotations

import asyncio

from monitor.config import load_settings
from monitor.core.clock import FakeClock
from monitor.service import _STOP_PUBLISH_S, Monitor


def _monitor() -> Monitor:
    settings = load_settings(
        environ={"LIBERTAI_MONITOR_ALLOWED_HOSTS": "http://127.0.0.1:*", "LIBERTAI_API_KEY": "k"}
    )
    return Monitor(settings, clock=FakeClock())


async def test_stop_leaves_a_final_snapshot_undone_past_its_share_of_the_stop() -> None:
    m = _monitor()
    clock = m.clock
    assert isinstance(clock, FakeClock)
    endless = asyncio.Event()

    async def slow_publish(*, force: bool = False) -> None:
        await endless.wait()  # a rebuild of 100,000 hosts on a busy machine

    m.publisher.publish_in_steps = slow_publish  # type: ignore[method-assign]
    stopping = asyncio.create_task(m.stop())
    await clock.advance(_STOP_PUBLISH_S - 0.1)
    assert not stopping.done()
    await clock.advance(0.1)
    assert stopping.done() and stopping.exception() is None


async def test_stop_publishes_the_last_results_when_the_rebuild_is_quick() -> None:
    m = _monitor()
    m.fleet.apply_listing({"alpha": ["http://127.0.0.1:9001"]}, m.clock.time())
    await m.stop()
    assert list(m.snapshot.models) == ["alpha"]
