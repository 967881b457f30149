"""Incidents survive a restart: the leader stores them, a new process reads them back, and a
follower shows the leader's (its own notes of the same changes are not stored twice)."""

from __future__ import annotations

from pathlib import Path

from monitor.core.results import HostState, Outcome
from monitor.store import Store
from monitor.web.status.incidents import IncidentLog, save_incidents, sync_incidents
from tests.status.support import NOW, A, B


async def _store(tmp_path: Path) -> Store:
    store = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'm.db'}")
    await store.upgrade()
    return store


def _noted() -> IncidentLog:
    log = IncidentLog()
    log.state_changed(NOW - 60, "m", A, HostState.UP, HostState.DOWN, Outcome.TIMEOUT)
    log.best_changed(NOW - 59, "m", None, B)
    log.best_changed(NOW - 58, "m", B, A)
    return log


async def test_a_restart_shows_the_previous_incidents(tmp_path: Path) -> None:
    store = await _store(tmp_path)
    try:
        before = _noted()
        await sync_incidents(before, store, leading=True, now=NOW, loaded=False)
        before.state_changed(NOW - 1, "m", A, HostState.DOWN, HostState.UP, Outcome.OK)
        await save_incidents(before, store, timeout_s=5)  # at stop
        after = IncidentLog()  # the restarted process
        await sync_incidents(after, store, leading=True, now=NOW, loaded=False)
        assert after.recent(NOW) == before.recent(NOW)
        assert [i.kind for i in after.recent(NOW)] == ["up", "best", "down"]
    finally:
        await store.close()


async def test_a_stored_incident_is_not_stored_twice(tmp_path: Path) -> None:
    store = await _store(tmp_path)
    try:
        log = _noted()
        for _ in range(3):
            await sync_incidents(log, store, leading=True, now=NOW, loaded=True)
        assert len(await store.load_incidents(0)) == 2
    finally:
        await store.close()


async def test_a_follower_shows_the_leaders_incidents_and_stores_none(tmp_path: Path) -> None:
    store = await _store(tmp_path)
    try:
        await sync_incidents(_noted(), store, leading=True, now=NOW, loaded=False)
        follower = IncidentLog()
        follower.state_changed(NOW - 60, "m", A, HostState.UP, HostState.DOWN, Outcome.TIMEOUT)
        await sync_incidents(follower, store, leading=False, now=NOW, loaded=True)
        assert len(follower.recent(NOW)) == 2
        assert len(await store.load_incidents(0)) == 2
    finally:
        await store.close()
