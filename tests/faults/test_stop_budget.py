"""The monitor's stop is bounded whatever the fleet's size: on a `FakeClock`."""

from __future__ import annotations

import asyncio

from monitor.config_load import load_settings
from monitor.core.clock import FakeClock
from monitor.core.steps import Steps, finish
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

    def slow_publish(*, force: bool = False) -> Steps[None]:
        while True:  # a rebuild of a huge fleet on a busy machine
            yield None

    m.publisher.publish = slow_publish  # type: ignore[method-assign]
    stopping = asyncio.create_task(m.stop())
    await clock.advance(_STOP_PUBLISH_S - 0.1)
    assert not stopping.done()
    await clock.advance(0.1)
    assert stopping.done() and stopping.exception() is None


async def test_stop_publishes_the_last_results_when_the_rebuild_is_quick() -> None:
    m = _monitor()
    finish(m.fleet.apply_listing({"alpha": ["http://127.0.0.1:9001"]}, m.clock.time()))
    await m.stop()
    assert list(m.snapshot.models) == ["alpha"]
