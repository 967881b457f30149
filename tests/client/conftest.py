"""Fixtures: a simulated network of two hosts serving `m` (h0 fast, h1 slower), a stub monitor that
names them, and recording hosts."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from monitor.core.clock import FakeClock
from monitor.sim import SimNetwork
from monitor.sim.testing import scenario_of
from tests.client.support import KEY, RecordingHost, StubMonitor, answer


@pytest.fixture
async def net() -> AsyncIterator[SimNetwork]:
    async with SimNetwork(scenario_of({"ttft": 2}, {"ttft": 20}), seed=3, keys=[KEY]) as network:
        yield network


@pytest.fixture
async def monitor(net: SimNetwork) -> AsyncIterator[StubMonitor]:
    """A stub monitor whose answer for `m` is h0, then h1."""
    stub = await StubMonitor().start()
    stub.answers["m"] = answer("m", net.host_url("h0"), [net.host_url("h1")])
    yield stub
    await stub.stop()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def recording_host() -> AsyncIterator[Callable[[], Awaitable[RecordingHost]]]:
    started: list[RecordingHost] = []

    async def start() -> RecordingHost:
        host = await RecordingHost().start()
        started.append(host)
        return host

    yield start
    for host in started:
        await host.stop()
