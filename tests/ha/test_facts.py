"""Host facts through the database: a follower shows what its leader learnt beside health
(identity verdicts, paths, throughput) and routes as the leader does; another vantage's answers
show that vantage's. On SQLite and on PostgreSQL (the `store` fixture)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from monitor.config import Settings
from monitor.config_load import load_settings
from monitor.core.certs import HostCert
from monitor.core.clock import FakeClock
from monitor.core.identity import Fingerprint
from monitor.core.membership import MembershipChange
from monitor.core.paths import Paths
from monitor.core.results import Outcome, ProbeKind, ProbeResult
from monitor.core.steps import finish
from monitor.core.throughput import Throughput
from monitor.ha.follower import Follower, Mark
from monitor.service import Monitor
from monitor.store import Store
from monitor.web.api import make_app

M = "hermes"
A, B, C = "http://127.0.0.1:1001", "http://127.0.0.1:1002", "http://127.0.0.1:1003"
HONEST = Fingerprint(17, ("Paris",), {"Paris": -0.01, "The": -5.2})
IMPOSTOR = Fingerprint(17, ("London",), {"London": -0.02, "The": -4.0})
PATHS = Paths(("/v1/chat/completions", "/v1/completions"), ("/v1/messages",))
MEASURED = Throughput(16, 42.0, 23.5)


def _settings(**env: str) -> Settings:
    base = {
        "LIBERTAI_MONITOR_ALLOWED_HOSTS": "http://127.0.0.1:*",
        "LIBERTAI_MONITOR_GATEWAY_URL": "http://127.0.0.1:9",
        "LIBERTAI_API_KEY": "sk-test-123456789",
    }
    return load_settings(environ={**base, **{f"LIBERTAI_MONITOR_{k}": v for k, v in env.items()}})


def _completion(host: str, at: float, ttft: float) -> ProbeResult:
    return ProbeResult(M, host, ProbeKind.COMPLETION, Outcome.OK, at, 200, 1.0, ttft, ttft + 5)


def _facts_of(at: float) -> list[ProbeResult]:
    """What the leader's rare probes found: C answers as another model; A's paths and throughput."""
    found = [
        ProbeResult(M, h, ProbeKind.IDENTITY, Outcome.OK, at, 200, fingerprint=fp)
        for h, fp in ((A, HONEST), (B, HONEST), (C, IMPOSTOR))
    ]
    found.append(ProbeResult(M, A, ProbeKind.PATHS, Outcome.OK, at, 400, paths=PATHS))
    found.append(ProbeResult(M, A, ProbeKind.THROUGHPUT, Outcome.OK, at, 200, throughput=MEASURED))
    return found


async def _probed_as(store: Store, now: float) -> None:
    """What a leader of `store`'s vantage writes: A, B and C joined and up (C the fastest), and
    the facts its rare probes found."""
    await store.record_membership([MembershipChange(now - 9, M, h, "joined") for h in (A, B, C)])
    leader = Monitor(_settings(), store, clock=FakeClock(now))
    finish(leader.fleet.apply_listing({M: [A, B, C]}, now - 9))
    for i in range(3):
        for host, ttft in ((A, 300.0), (B, 400.0), (C, 50.0)):
            leader.recorder.record(_completion(host, now - 8 + i, ttft))
    for result in _facts_of(now - 4):
        leader.recorder.record(result)
    await store.flush()
    await store.flush_facts()


def _host(body: dict[str, Any], url: str) -> dict[str, Any]:
    return next(h for h in body["hosts"] if h["url"] == url and h["model"] == M)


@pytest.fixture
async def follower(store: Store) -> AsyncIterator[Monitor]:
    """A monitor following `store`'s leader, caught up with what it wrote."""
    now = time.time()
    await _probed_as(store, now)
    m = Monitor(_settings(), clock=FakeClock(now))
    f = Follower(store.engine, store.vantage, m.fleet, m.recorder, m.best_hosts, m.clock)
    f.open(Mark(0, now - 30))
    while await f.read_once():
        pass
    finish(m.publisher.publish(force=True))
    yield m
    await f.stop(catch_up=False)


async def test_a_followers_hosts_show_the_leaders_identity_paths_and_throughput(
    follower: Monitor, aiohttp_client: Any
) -> None:
    client: TestClient = await aiohttp_client(make_app(follower))  # type: ignore[type-arg]
    body = await (await client.get("/v1/hosts")).json()
    assert {h: _host(body, h)["identity"] for h in (A, B, C)} == {A: "ok", B: "ok", C: "mismatch"}
    a = _host(body, A)
    assert (a["paths"], a["paths_refused"]) == (list(PATHS.accepted), list(PATHS.refused))
    assert (a["tokens_per_s"], a["inter_token_ms_p50"]) == (42.0, 23.5)


async def test_a_follower_never_names_a_mismatch_host_best_while_another_is_up(
    follower: Monitor, aiohttp_client: Any
) -> None:
    client: TestClient = await aiohttp_client(make_app(follower))  # type: ignore[type-arg]
    best = await (await client.get(f"/v1/best/{M}")).json()
    assert best["host"] in (A, B) and C not in best["fallbacks"]


async def test_another_vantages_hosts_show_its_identity_verdicts_and_paths(
    tmp_path: Path, aiohttp_client: Any
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'h.db'}"
    here = await Store.open(url)
    await here.upgrade()
    here.start_writer()
    eu = await Store.open(url, vantage="eu")
    eu.start_writer()
    try:
        await _probed_as(eu, time.time())
        m = Monitor(_settings(DATABASE_URL=url), here)
        client: TestClient = await aiohttp_client(make_app(m))  # type: ignore[type-arg]
        theirs = await (await client.get("/v1/hosts?vantage=eu")).json()
        ours = await (await client.get("/v1/hosts")).json()
    finally:
        await eu.close()
        await here.close()
    assert {h: _host(theirs, h)["identity"] for h in (A, B, C)} == {A: "ok", B: "ok", C: "mismatch"}
    assert _host(theirs, A)["paths_refused"] == list(PATHS.refused)
    assert _host(theirs, A)["tokens_per_s"] == 42.0
    assert ours["hosts"] == [], "this vantage probed nothing: none of eu's facts are its own"


async def test_a_restarted_monitor_shows_its_stored_facts_before_probing_again(store: Store) -> None:
    now = time.time()
    await _probed_as(store, now)
    m = Monitor(_settings(), store, clock=FakeClock(now))
    await m.prepare()
    try:
        views = {h.url: h for h in m.snapshot.models[M].hosts}
    finally:
        await m.stop()
    assert views[C].identity.state == "mismatch" and views[A].paths == PATHS
    assert views[A].tokens_per_s == MEASURED.tokens_per_s


async def test_another_vantages_hosts_show_the_certificate_each_host_showed(
    tmp_path: Path, aiohttp_client: Any
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'h.db'}"
    here = await Store.open(url)
    await here.upgrade()
    here.start_writer()
    eu = await Store.open(url, vantage="eu")
    eu.start_writer()
    try:
        await _probed_as(eu, time.time())
        await here.save_certs([HostCert(A, "a" * 64, None, time.time())])
        m = Monitor(_settings(DATABASE_URL=url), here)
        await m.certs.refresh()
        client: TestClient = await aiohttp_client(make_app(m))  # type: ignore[type-arg]
        theirs = await (await client.get("/v1/hosts?vantage=eu")).json()
    finally:
        await eu.close()
        await here.close()
    assert _host(theirs, A)["tls"]["sha256"] == "a" * 64
    assert _host(theirs, B)["tls"] is None
