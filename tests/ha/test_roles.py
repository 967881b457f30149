"""Roles in one process: a follower takes in its leader's writes (once each) and writes nothing; a
leader that is demoted stops probing; another vantage's answers and the hosts it sees down."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import func, select

from monitor.config import ConfigError, Settings
from monitor.config_load import load_settings
from monitor.core.clock import FakeClock
from monitor.core.keys import HostKey
from monitor.core.membership import MembershipChange
from monitor.core.results import HostState, Outcome, ProbeKind, ProbeResult
from monitor.core.steps import finish
from monitor.ha.election import Role
from monitor.ha.follower import Follower, Mark, listing_after
from monitor.service import Monitor
from monitor.store import Store
from monitor.store.schema import probe_results
from monitor.web.api import make_app
from tests.service.support import eventually

M = "hermes"
A, B = "http://127.0.0.1:1001", "http://127.0.0.1:1002"


def _settings(**env: str) -> Settings:
    base = {
        "LIBERTAI_MONITOR_ALLOWED_HOSTS": "http://127.0.0.1:*",
        "LIBERTAI_MONITOR_GATEWAY_URL": "http://127.0.0.1:9",  # nothing listens: discovery fails fast
        "LIBERTAI_API_KEY": "sk-test-123456789",
    }
    return load_settings(environ={**base, **{f"LIBERTAI_MONITOR_{k}": v for k, v in env.items()}})


def _result(at: float, host: str = A, outcome: Outcome = Outcome.OK) -> ProbeResult:
    return ProbeResult(
        M, host, ProbeKind.HEALTH, outcome, at, 200 if outcome is Outcome.OK else 503, 1.0, None, 9.0
    )


async def _rows(store: Store) -> int:
    async with store.engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(probe_results))).scalar_one())


@pytest.fixture
async def follower_of(store: Store) -> AsyncIterator[tuple[Monitor, Follower]]:
    """A monitor's parts following `store`'s writes (as the service wires them on PostgreSQL)."""
    m = Monitor(_settings(), clock=FakeClock(time.time()))
    f = Follower(store.engine, store.vantage, m.fleet, m.recorder, m.best_hosts, m.clock)
    yield m, f
    await f.stop(catch_up=False)


def test_membership_follows_joined_and_retired_and_keeps_a_host_that_left() -> None:
    changes = [
        MembershipChange(0.0, M, A, "joined"),
        MembershipChange(0.0, M, B, "joined"),
        MembershipChange(1.0, M, B, "left"),
    ]
    assert listing_after({}, changes) == {M: {A, B}}
    assert listing_after({M: {A, B}}, [MembershipChange(2.0, M, A, "retired")]) == {M: {B}}


async def _leader_listed_a_and_b(store: Store, now: float) -> None:
    """What a leader records when its discovery found hosts A and B of model M."""
    await store.record_membership(
        [MembershipChange(now - 5, M, A, "joined"), MembershipChange(now - 5, M, B, "joined")]
    )


async def test_a_follower_takes_in_each_of_the_leaders_results_once_and_writes_nothing(
    store: Store, follower_of: tuple[Monitor, Follower]
) -> None:
    m, follower = follower_of
    now = m.clock.time()
    await _leader_listed_a_and_b(store, now)
    for i in range(3):
        store.submit(_result(now - 3 + i))
    await store.flush()
    follower.open(Mark(0, now))
    while await follower.read_once():
        pass
    assert set(m.fleet.hosts_of(M)) == {A, B}
    assert len(m.fleet.health[HostKey(M, A)].samples) == 3
    assert follower.taken_in == 3
    # Read again from the same mark (a tail restarted with its overlap): nothing twice.
    follower.open(Mark(0, now))
    await follower.read_once()
    assert len(m.fleet.health[HostKey(M, A)].samples) == 3
    assert sum(m.recorder.counts.values()) == 0, "a follower counts no probe of its own"
    assert await _rows(store) == 3, "and writes none"


async def test_a_follower_drops_a_retired_host_and_adopts_the_leaders_best(
    store: Store, follower_of: tuple[Monitor, Follower]
) -> None:
    m, follower = follower_of
    now = m.clock.time()
    await _leader_listed_a_and_b(store, now)
    follower.open(Mark(0, now))
    await follower.read_once()
    await store.record_membership([MembershipChange(now - 1, M, B, "retired")])
    await store.save_best(M, A, now)
    await follower.read_once()
    assert list(m.fleet.hosts_of(M)) == [A]
    assert m.best_hosts.best[M] == A


async def test_a_demoted_leader_stops_probing_and_leads_again_with_its_targets() -> None:
    m = Monitor(_settings(), clock=FakeClock(time.time()))
    finish(m.fleet.apply_listing({M: [A, B]}, m.clock.time()))
    await m.prepare()
    await m.run()
    try:
        assert m.snapshot.served_by is not None and m.snapshot.served_by.role == "leader"
        probing = len(m.targets)
        assert probing > 0
        await m.roles.follow()
        assert len(m.targets) == 0, "a follower has no probe scheduled"
        assert m.snapshot.served_by == m.roles.served_by and m.roles.role is Role.FOLLOWER
        await m.roles.lead()
        assert len(m.targets) == probing
    finally:
        await m.stop()


def test_a_vantage_name_that_is_not_one_is_refused_in_one_line() -> None:
    with pytest.raises(ConfigError) as info:
        _settings(VANTAGE="eu west")
    assert "LIBERTAI_MONITOR_VANTAGE" in str(info.value) and "\n" not in str(info.value)
    assert _settings().vantage == "default"


# -- vantages ---------------------------------------------------------------------------------


@pytest.fixture
async def two_vantages(tmp_path: Path) -> AsyncIterator[tuple[Monitor, Store]]:
    """A monitor of vantage `default` and a store of vantage `eu` on one SQLite file; both list
    hosts A and B; eu sees A down and B up."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'h.db'}"
    local = await Store.open(url)
    await local.upgrade()
    local.start_writer()
    eu = await Store.open(url, vantage="eu")
    eu.start_writer()
    now = time.time()
    await eu.record_membership(
        [MembershipChange(now - 9, M, A, "joined"), MembershipChange(now - 9, M, B, "joined")]
    )
    for i in range(4):
        eu.submit(_result(now - 8 + i, A, Outcome.SERVER_ERROR))
        eu.submit(_result(now - 8 + i, B))
    await eu.flush()
    m = Monitor(_settings(DATABASE_URL=url), local)
    finish(m.fleet.apply_listing({M: [A, B]}, now))
    for i in range(4):
        m.recorder.record(_result(now - 4 + i, B))
        m.recorder.record(_result(now - 4 + i, A))
    assert m.vantages is not None
    m.publisher.set_elsewhere(await m.vantages.elsewhere())
    finish(m.publisher.publish(force=True))
    yield m, eu
    await eu.close()
    await local.close()


def _host(body: dict[str, Any], url: str) -> dict[str, Any]:
    return next(h for h in body["hosts"] if h["url"] == url and h["model"] == M)


async def test_a_host_down_from_another_vantage_only_is_regional(
    two_vantages: tuple[Monitor, Store], aiohttp_client: Any
) -> None:
    m, _ = two_vantages
    client: TestClient = await aiohttp_client(make_app(m))  # type: ignore[type-arg]
    body = await (await client.get("/v1/hosts")).json()
    assert _host(body, A)["state"] == "up"
    assert (_host(body, A)["down_from"], _host(body, A)["scope"]) == (["eu"], "regional")
    assert (_host(body, B)["down_from"], _host(body, B)["scope"]) == ([], None)
    metrics = await (await client.get("/metrics")).text()
    assert f'libertai_monitor_host_down_vantages{{host="{A}",model="{M}",scope="regional"}} 1.0' in metrics


async def test_a_host_down_from_every_vantage_is_down_for_all(
    two_vantages: tuple[Monitor, Store], aiohttp_client: Any
) -> None:
    m, _ = two_vantages
    now = time.time()
    for i in range(3):
        m.recorder.record(_result(now + i, A, Outcome.SERVER_ERROR))
    finish(m.publisher.publish(force=True))
    client: TestClient = await aiohttp_client(make_app(m))  # type: ignore[type-arg]
    host = _host(await (await client.get("/v1/hosts")).json(), A)
    assert host["state"] == HostState.DOWN.value
    assert (host["down_from"], host["scope"]) == (["default", "eu"], "all")


async def test_another_vantages_answers_are_built_from_its_results(
    two_vantages: tuple[Monitor, Store], aiohttp_client: Any
) -> None:
    m, _ = two_vantages
    client: TestClient = await aiohttp_client(make_app(m))  # type: ignore[type-arg]
    ours = await (await client.get("/v1/best")).json()
    theirs = await (await client.get("/v1/best?vantage=eu")).json()
    assert ours["served_by"] == {"vantage": "default", "role": "leader"} and ours["vantage"] == "default"
    assert theirs["vantage"] == "eu" and theirs["served_by"] == ours["served_by"]
    assert theirs["models"][M]["host"] == B and theirs["models"][M]["healthy_hosts"] == 1
    one = await (await client.get(f"/v1/best/{M}?vantage=eu")).json()
    assert one["host"] == B and one["vantage"] == "eu"
    hosts = await (await client.get("/v1/hosts?vantage=eu")).json()
    assert _host(hosts, A)["state"] == "down" and _host(hosts, A)["down_from"] == ["eu"]


async def test_vantages_are_listed_with_their_last_result(
    two_vantages: tuple[Monitor, Store], aiohttp_client: Any
) -> None:
    m, _ = two_vantages
    client: TestClient = await aiohttp_client(make_app(m))  # type: ignore[type-arg]
    body = await (await client.get("/v1/vantages")).json()
    by_name = {v["name"]: v for v in body["vantages"]}
    assert set(by_name) == {"default", "eu"}
    assert by_name["eu"]["last_result_at"].endswith("Z") and by_name["default"]["local"] is True


async def test_an_unknown_vantage_is_404_and_a_bad_name_422(
    two_vantages: tuple[Monitor, Store], aiohttp_client: Any
) -> None:
    m, _ = two_vantages
    client: TestClient = await aiohttp_client(make_app(m))  # type: ignore[type-arg]
    for path, status in (("/v1/best?vantage=mars", 404), ("/v1/hosts?vantage=a%20b", 422)):
        resp = await client.get(path)
        assert resp.status == status and "detail" in await resp.json()


async def test_readyz_and_metrics_say_the_role(
    two_vantages: tuple[Monitor, Store], aiohttp_client: Any
) -> None:
    m, _ = two_vantages
    client: TestClient = await aiohttp_client(make_app(m))  # type: ignore[type-arg]
    ready = await (await client.get("/readyz")).json()
    assert ready["served_by"] == {"vantage": "default", "role": "leader"}
    metrics = await (await client.get("/metrics")).text()
    assert 'libertai_monitor_leader{vantage="default"} 1.0' in metrics


async def test_a_monitor_on_postgresql_follows_until_it_holds_the_lock_then_leads(pg_url: str) -> None:
    store = await Store.open(pg_url)
    await store.upgrade()
    store.start_writer()
    m = Monitor(_settings(), store)  # the settings name SQLite: the store's database decides
    try:
        await m.prepare()
        assert m.election is not None and m.roles.role is Role.FOLLOWER
        await m.run()
        await asyncio.wait_for(m.election.wait_for(Role.LEADER), 10)
        await eventually(lambda: m.roles.role is Role.LEADER, timeout=10, every=0.01)  # its handler ran
        assert m.snapshot.served_by is not None and m.snapshot.served_by.role == "leader"
    finally:
        await m.stop()
        await store.close()
