"""Process level, on a real PostgreSQL server and the simulator: monitors sharing a database and a
vantage probe as one (one leader), answer alike, survive the leader's SIGKILL; a monitor of another
vantage probes on its own and its answers are its own."""

from __future__ import annotations

import signal
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import pytest

from monitor.sim import SimNetwork
from tests.ha.monitors import best_of, host_requests, probes_made, start_monitor, wait_role
from tests.pg import PgServer
from tests.service.support import eventually, get_json, network
from tests.service.test_process import Service

pytestmark = pytest.mark.slow


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        yield session


async def _targets(http: aiohttp.ClientSession, svc: Service) -> int:
    """Probe targets of a leader: one round of its probes."""
    async with http.get(svc.url + "/metrics") as r:
        text = await r.text()
    line = next(x for x in text.splitlines() if x.startswith("libertai_monitor_probe_targets "))
    return int(float(line.split()[1]))


def _stop(*services: Service) -> None:
    for svc in services:
        if svc.proc is not None and svc.proc.poll() is None:
            svc.stop()


@asynccontextmanager
async def _leader_and_follower(
    net: SimNetwork, tmp_path: Path, pg_url: str, http: aiohttp.ClientSession
) -> AsyncIterator[tuple[Service, Service]]:
    """Monitor "a" started first and leading, then "b" on the same database following; both are
    stopped at the end, whatever the test did to them."""
    a = start_monitor(net, tmp_path, "a", pg_url)
    started = [a]
    try:
        await wait_role(http, a, "leader")
        b = start_monitor(net, tmp_path, "b", pg_url)
        started.append(b)
        await wait_role(http, b, "follower")
        yield a, b
    finally:
        _stop(*started)


async def test_two_monitors_on_one_database_probe_as_one_and_answer_alike(
    pg_url: str, tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    async with network("demo") as net, _leader_and_follower(net, tmp_path, pg_url, http) as (a, b):
        round_ = await eventually(lambda: _targets(http, a))
        sim0, a0 = host_requests(net.ground_truth()), await probes_made(http, a)
        await eventually(lambda: _more(http, a, a0 + 4 * round_), timeout=60)
        sim1, a1 = host_requests(net.ground_truth()), await probes_made(http, a)
        assert await probes_made(http, b) == 0, "the follower probed"
        # Two probing monitors would double the hosts' traffic; one leader's is its own count,
        # give or take the probes in flight at either reading (at most a round).
        assert sim1 - sim0 <= (a1 - a0) + round_, (sim1 - sim0, a1 - a0, round_)

        async def same_best() -> bool:
            best_a = await best_of(http, a.url + "/v1/best")
            best_b = await best_of(http, b.url + "/v1/best")
            return best_a == best_b and any(best_a.values())

        await eventually(same_best, timeout=30)


async def _more(http: aiohttp.ClientSession, svc: Service, at_least: int) -> bool:
    return await probes_made(http, svc) >= at_least


async def test_the_follower_leads_within_10_s_of_a_sigkill_and_loses_no_result(
    pg_url: str, pg_server: PgServer, tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    async with network("demo") as net, _leader_and_follower(net, tmp_path, pg_url, http) as (a, b):
        # Models whose right answer cannot move in the second of the kill (no flapping host).
        truth = net.ground_truth()
        moving = {m for h in truth["hosts"] if h["behaviour"].get("flap") for m in h["expected"]}
        expected = {m: h for m, h in truth["expected_best"].items() if h and m not in moving}

        async def follows() -> bool:
            best = await best_of(http, b.url + "/v1/best")
            return all(best.get(m) == h for m, h in expected.items())

        await eventually(follows, timeout=30)
        a.stop(signal.SIGKILL)
        killed, killed_wall = time.monotonic(), time.time()
        led = await wait_role(http, b, "leader", timeout=20)
        assert led - killed < 10.0
        first = await best_of(http, b.url + "/v1/best")
        assert {m: first.get(m) for m in expected} == expected, "its first answers are the last ones"
        round_ = await eventually(lambda: _targets(http, b))
        await eventually(lambda: _more(http, b, 3 * round_), timeout=60)
        probed = await probes_made(http, b)
        assert b.stop() == 0  # SIGTERM: the results counted so far are written before it exits
        database = pg_url.rsplit("/", 1)[1]
        count = f"SELECT count(*) FROM probe_results WHERE at >= {int(killed_wall * 1000)}"
        stored = int(pg_server.sql(database, count))
        # Every result the survivor counted is stored (it alone probed after the kill), and no more
        # than the probes it made after the count (at most a round).
        assert probed <= stored <= probed + round_, (probed, stored, round_)


async def test_a_monitor_of_another_vantage_probes_on_its_own_and_answers_its_own(
    pg_url: str, tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    async with network("demo") as net, network("demo") as elsewhere:
        # Two networks: the hosts the second vantage sees are not the first one's.
        a = start_monitor(net, tmp_path, "a", pg_url)
        c: Service | None = None
        try:
            await wait_role(http, a, "leader")
            c = start_monitor(elsewhere, tmp_path, "c", pg_url, vantage="eu")
            await wait_role(http, c, "leader")  # its own election: it leads its vantage
            ready = await get_json(http, c.url + "/readyz")
            assert ready["served_by"] == {"vantage": "eu", "role": "leader"}
            await eventually(lambda: _more(http, c, 1))
            assert host_requests(elsewhere.ground_truth()) > 0

            theirs = {h["normalized_url"] for h in elsewhere.ground_truth()["hosts"]}

            async def answered() -> bool:
                best_c = await best_of(http, c.url + "/v1/best") if c else {}
                chosen = {h for h in best_c.values() if h}
                return bool(chosen) and chosen <= theirs

            await eventually(answered, timeout=30)

            async def listed() -> bool:
                body = await get_json(http, a.url + "/v1/vantages")
                return {v["name"] for v in body["vantages"]} == {"default", "eu"}

            await eventually(listed)

            async def a_serves_cs() -> bool:
                theirs = await best_of(http, a.url + "/v1/best?vantage=eu")
                return theirs == await best_of(http, c.url + "/v1/best") if c else False

            await eventually(a_serves_cs, timeout=30)
            own = {h for h in (await best_of(http, a.url + "/v1/best")).values() if h}
            assert own and not own & theirs, "the first vantage answers with its own network's hosts"
            async with http.get(a.url + "/v1/best?vantage=nowhere") as r:
                assert r.status == 404 and "detail" in await r.json()
            async with http.get(a.url + "/v1/hosts?vantage=no%20such") as r:
                assert r.status == 422 and "detail" in await r.json()
        finally:
            _stop(*(s for s in (a, c) if s is not None))
