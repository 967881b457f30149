"""Fixtures for the simulated network's tests: start networks, and one HTTP client session."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from monitor.sim import Scenario, SimNetwork
from monitor.sim.testing import StartNet


@pytest.fixture
async def start_net() -> AsyncIterator[StartNet]:
    """`await start_net(scenario, seed=..., keys=...)`: a running network, stopped after the test."""
    nets: list[SimNetwork] = []

    async def start(scenario: Scenario, **kwargs: Any) -> SimNetwork:
        net = SimNetwork(scenario, **kwargs)
        await net.start()
        nets.append(net)
        return net

    yield start
    for net in nets:
        await net.stop()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session
