"""The service's parts at their edges: store failures answered and logged with their reason,
readiness as a pure decision, and the snapshot publisher paced by the injected clock."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from aiohttp.test_utils import TestClient
from structlog.testing import capture_logs

from monitor.config_load import load_settings
from monitor.core.clock import FakeClock
from monitor.core.keys import HostKey
from monitor.core.membership import MembershipChange
from monitor.core.results import Evidence, Outcome, ProbeKind, ProbeResult
from monitor.core.steps import finish
from monitor.parts.best_hosts import BestChanged, BestHosts, ranking_policy
from monitor.parts.fleet import Fleet
from monitor.parts.persistence import Persistence
from monitor.parts.readiness import readiness
from monitor.parts.recorder import health_policy
from monitor.parts.restore import restore
from monitor.parts.targets import Targets
from monitor.service import Monitor
from monitor.store import DiscoveryRecord, HistoryPoint, StoreError, StoreStats
from monitor.web.api import make_app

HOST = "http://127.0.0.1:1001"
REASON = "reading history failed: database is locked"


def _settings() -> Any:
    return load_settings(
        environ={"LIBERTAI_MONITOR_ALLOWED_HOSTS": "http://127.0.0.1:*", "LIBERTAI_API_KEY": "k"}
    )


class _BrokenStore:
    """Every read and write fails as the store says it failed."""

    async def history(
        self, model: str, host: str | None, since: float, until: float, step_s: int
    ) -> list[HistoryPoint]:
        raise StoreError(REASON)

    async def record_discovery(self, record: DiscoveryRecord) -> None:
        raise StoreError("recording a discovery run failed: disk I/O error")

    async def record_membership(self, events: Sequence[MembershipChange]) -> None:
        raise StoreError("recording membership failed: disk I/O error")

    async def save_best(self, model: str, host: str | None, at: float) -> None:
        raise StoreError("saving the best host failed: disk I/O error")

    async def load_members(self) -> dict[str, set[str]]:
        raise StoreError("loading members failed: no such table: models")

    async def load_recent_evidence(
        self, since: float, per_host_limit: int = 200
    ) -> list[tuple[HostKey, Evidence]]:
        raise StoreError("loading recent results failed: no such table")

    async def load_best(self) -> dict[str, str | None]:
        raise StoreError("loading best hosts failed: no such table")


async def test_history_that_hits_a_store_error_answers_503_with_the_reason(aiohttp_client: Any) -> None:
    m = Monitor(_settings(), clock=FakeClock())
    finish(m.fleet.apply_listing({"hermes": [HOST]}, m.clock.time()))
    finish(m.publisher.publish(force=True))
    m.history = _BrokenStore()
    client: TestClient = await aiohttp_client(make_app(m))  # type: ignore[type-arg]
    with capture_logs() as logs:
        resp = await client.get("/v1/history/hermes?since=1h")
    assert resp.status == 503
    assert await resp.json() == {"detail": REASON}
    assert any(e.get("error") == REASON for e in logs)


async def test_history_without_a_database_answers_503(aiohttp_client: Any) -> None:
    m = Monitor(_settings(), clock=FakeClock())
    finish(m.fleet.apply_listing({"hermes": [HOST]}, m.clock.time()))
    finish(m.publisher.publish(force=True))
    client: TestClient = await aiohttp_client(make_app(m))  # type: ignore[type-arg]
    resp = await client.get("/v1/history/hermes")
    assert resp.status == 503 and await resp.json() == {"detail": "History needs a database"}


async def test_a_failed_best_host_save_is_logged_with_the_stores_reason() -> None:
    persistence = Persistence(_BrokenStore())
    with capture_logs() as logs:
        persistence.best_changed(BestChanged("hermes", None, HOST, 1.0, known=False))
        await persistence.drain(5)
    (entry,) = [e for e in logs if e["event"] == "could not save the best host"]
    assert entry["error"] == "saving the best host failed: disk I/O error" and entry["model"] == "hermes"


async def test_a_restore_from_an_unreadable_store_starts_empty_and_says_why() -> None:
    settings = _settings()
    fleet = Fleet(settings, Targets(settings, FakeClock()))
    best = BestHosts(ranking_policy(settings))
    with capture_logs() as logs:
        await restore(_BrokenStore(), fleet, best, health_policy(settings), 1_700_000_000.0)
    assert fleet.health == {} and best.best == {}
    (entry,) = [e for e in logs if e["event"] == "could not restore state from the database"]
    assert entry["error"] == "loading members failed: no such table: models"


def _stats(healthy: bool) -> StoreStats:
    return StoreStats(0, 0 if healthy else 3, 0, 0, healthy, None if healthy else "disk full")


def test_ready_with_a_host_list_an_accepted_key_and_working_writes() -> None:
    r = readiness(has_host_list=True, key_set=True, key_outcome=Outcome.OK, store=_stats(True))
    assert r.ready and set(r.checks.values()) == {"ok"}


def test_not_ready_before_any_host_list() -> None:
    r = readiness(has_host_list=False, key_set=True, key_outcome=Outcome.OK, store=None)
    assert not r.ready and r.checks["discovery"] == "no host list yet"


def test_not_ready_when_the_gateway_rejects_the_key() -> None:
    r = readiness(has_host_list=True, key_set=True, key_outcome=Outcome.KEY_REJECTED, store=None)
    assert not r.ready and r.checks["api_key"] == "rejected by the gateway"


def test_ready_without_a_key_which_is_reported() -> None:
    r = readiness(has_host_list=True, key_set=False, key_outcome=None, store=None)
    assert r.ready and r.checks["api_key"] == "not set"


def test_not_ready_while_database_writes_fail_and_says_why() -> None:
    r = readiness(has_host_list=True, key_set=True, key_outcome=Outcome.OK, store=_stats(False))
    assert not r.ready and r.checks["database"] == "writes failing: disk full"


async def test_a_recorded_result_is_published_at_the_next_tick_of_the_clock() -> None:
    clock = FakeClock()
    m = Monitor(_settings(), clock=clock)
    finish(m.fleet.apply_listing({"hermes": [HOST]}, clock.time()))
    finish(m.publisher.publish(force=True))
    publishing = asyncio.create_task(m.publisher.run_forever())
    try:
        await clock.advance(1.0)
        for i in range(2):
            at = clock.time() + i
            m.recorder.record(
                ProbeResult("hermes", HOST, ProbeKind.HEALTH, Outcome.OK, at, 200, 1.0, None, 9)
            )
        await clock.advance(0.1)
        assert m.snapshot.models["hermes"].healthy == 0  # not before the tick
        await clock.advance(0.2)
        assert m.snapshot.models["hermes"].healthy == 1
    finally:
        publishing.cancel()
        await asyncio.gather(publishing, return_exceptions=True)
