"""Election on a real PostgreSQL server (tests/pg.py). Real time is involved (the server's sessions),
so every wait is a bounded wait for a condition, never a sleep that asserts a timing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg  # type: ignore[import-untyped]
import pytest

from monitor.ha.election import Election, Role, asyncpg_dsn

BOUND_S = 10.0  # the takeover bound


async def _role(election: Election, role: Role, within_s: float = BOUND_S) -> None:
    await asyncio.wait_for(election.wait_for(role), within_s)


async def _tries(election: Election, more: int) -> None:
    target = election.attempts + more
    await asyncio.wait_for(election.wait_until(lambda: election.attempts >= target), BOUND_S)


class Running:
    def __init__(self) -> None:
        self.tasks: list[tuple[Election, asyncio.Task[None]]] = []

    def start(self, url: str, vantage: str = "default") -> Election:
        e = Election(url, vantage, retry_s=0.1, check_s=0.1, check_timeout_s=2.0)
        self.tasks.append((e, asyncio.create_task(e.run())))
        return e

    async def stop(self, election: Election) -> None:
        for e, t in self.tasks:
            if e is election:
                t.cancel()
                await asyncio.gather(t, return_exceptions=True)


@pytest.fixture
async def running() -> AsyncIterator[Running]:
    r = Running()
    yield r
    for _, t in r.tasks:
        t.cancel()
    await asyncio.gather(*(t for _, t in r.tasks), return_exceptions=True)


async def _lock_holders(url: str) -> list[int]:
    dsn = asyncpg_dsn(url)
    assert dsn is not None
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted")
        return [int(r["pid"]) for r in rows]
    finally:
        await conn.close()


async def _terminate(url: str, pid: int) -> None:
    dsn = asyncpg_dsn(url)
    assert dsn is not None
    conn = await asyncpg.connect(dsn)
    try:
        assert await conn.fetchval("SELECT pg_terminate_backend($1)", pid)
    finally:
        await conn.close()


async def test_two_monitors_of_one_vantage_elect_exactly_one_leader(pg_url: str, running: Running) -> None:
    a = running.start(pg_url)
    await _role(a, Role.LEADER)
    b = running.start(pg_url)
    await _tries(b, 3)
    assert (a.role, b.role) == (Role.LEADER, Role.FOLLOWER)
    assert len(await _lock_holders(pg_url)) == 1


async def _changes(election: Election, at_least: int) -> None:
    await asyncio.wait_for(election.wait_until(lambda: election.changes >= at_least), BOUND_S)


async def test_leader_whose_session_is_killed_demotes(pg_url: str, running: Running) -> None:
    a = running.start(pg_url)
    await _role(a, Role.LEADER)
    [pid] = await _lock_holders(pg_url)
    await _terminate(pg_url, pid)
    await _changes(a, 2)  # leader, then follower (it may lead again later: nobody else wants it)


async def test_after_the_leaders_session_is_killed_one_monitor_leads_again(
    pg_url: str, running: Running
) -> None:
    a = running.start(pg_url)
    await _role(a, Role.LEADER)
    b = running.start(pg_url)
    await _tries(b, 1)
    [pid] = await _lock_holders(pg_url)
    await _terminate(pg_url, pid)
    await _changes(a, 2)

    async def one_leader() -> None:
        # a bounded poll: the server's view of the lock has no event to wait on
        while [a.role, b.role].count(Role.LEADER) != 1 or len(await _lock_holders(pg_url)) != 1:  # noqa: ASYNC110
            await asyncio.sleep(0.05)

    await asyncio.wait_for(one_leader(), BOUND_S)
    [holder] = await _lock_holders(pg_url)
    assert holder != pid


async def test_leader_that_stops_hands_over_to_the_follower(pg_url: str, running: Running) -> None:
    a = running.start(pg_url)
    await _role(a, Role.LEADER)
    b = running.start(pg_url)
    await _tries(b, 1)
    await running.stop(a)
    await _role(b, Role.LEADER)


async def test_monitors_of_different_vantages_both_lead(pg_url: str, running: Running) -> None:
    a = running.start(pg_url, "eu")
    b = running.start(pg_url, "us")
    await _role(a, Role.LEADER)
    await _role(b, Role.LEADER)
    assert len(await _lock_holders(pg_url)) == 2
