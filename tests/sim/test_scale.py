"""One process serves many hosts: start, list, answer and stop quickly."""

from __future__ import annotations

import asyncio
import resource
import time

import aiohttp
import pytest

from monitor.sim import SimNetwork, load_scenario
from monitor.sim.testing import AUTH, chat_body

N = 200


async def test_hundreds_of_hosts_start_answer_and_stop(http: aiohttp.ClientSession) -> None:
    # How fast they start and stop is measured by bench/sim_delay.py, not asserted here: a timing
    # bound fails at random on a busy machine.
    net = SimNetwork(load_scenario("scale", hosts=N, models=20, ttft_ms=20), seed=1)
    await net.start()
    try:
        async with http.get(f"{net.gateway_url}/libertai/models") as r:
            listing = await r.json()
        assert sum(len(v["servers"]) for v in listing.values()) == N
        assert len({h.port for h in net.hosts}) == N

        async def health(url: str, model: str) -> int:
            async with http.get(f"{url}/health/{model}") as r:
                return r.status

        statuses = await asyncio.gather(*(health(h.direct_url, h.models[0]) for h in net.hosts))
        assert set(statuses) == {200}
        truth = net.ground_truth()
        assert len(truth["hosts"]) == N
        assert all(
            h["requests"]
            == {f"/health/{h['models'][0]}": {"total": 1, "with_key": 0, "without_key": 1, "any_auth": 0}}
            for h in truth["hosts"]
        )
    finally:
        await net.stop()
    host = net.hosts[0]
    with pytest.raises(aiohttp.ClientConnectionError):  # stopped: nothing answers any more
        async with http.get(f"{host.direct_url}/health/{host.models[0]}"):
            pass


@pytest.mark.slow  # 200 real streams
async def test_concurrent_streams_each_wait_their_configured_ttft() -> None:
    # 200 streams started 2 ms apart (500/s), so about 20 are open at any time.
    async with (
        SimNetwork(load_scenario("scale", hosts=20, ttft_ms=50, itl_ms=1, tokens=2), seed=1) as net,
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http,
    ):

        async def ttft(delay: float, url: str, model: str) -> float:
            await asyncio.sleep(delay)
            t0 = time.perf_counter()
            body = chat_body(model, stream=True)
            async with http.post(f"{url}/v1/chat/completions", json=body, headers=AUTH) as r:
                await r.content.readline()
                first = time.perf_counter() - t0
                await r.read()
            return first

        hosts = net.hosts * 10
        firsts = sorted(
            await asyncio.gather(*(ttft(i * 0.002, h.direct_url, h.models[0]) for i, h in enumerate(hosts)))
        )
        truth = sorted(t for h in net.ground_truth()["hosts"] for t in h["ttft_truth_ms"])
    # Only lower bounds: a busy machine can only add delay. How little the simulator adds is
    # measured by bench/sim_delay.py (README: "Scale and timing fidelity"), not asserted here.
    assert firsts[0] >= 0.05
    assert len(truth) == len(hosts) and truth[0] >= 50


async def test_the_open_files_limit_is_raised_to_the_hard_limit() -> None:
    async with SimNetwork(load_scenario("scale", hosts=1)):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert soft == hard
