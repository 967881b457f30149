"""Election decisions on a FakeClock with a fake lock connection: no database, no real time."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import structlog

from monitor.core.clock import FakeClock
from monitor.ha.election import Election, Role, asyncpg_dsn, lock_key

URL = "postgresql+asyncpg://monitor:s3cret-pw@db.example:5432/monitor"


class FakeLock:
    """One fake server: the lock is free or held by one connection."""

    def __init__(self) -> None:
        self.holder: FakeConn | None = None
        self.dsns: list[str] = []
        self.partitioned = False  # the network between monitors and server is down

    async def connect(self, dsn: str) -> FakeConn:
        self.dsns.append(dsn)
        if self.partitioned:
            raise OSError("no route to host")
        return FakeConn(self)


class FakeConn:
    def __init__(self, server: FakeLock) -> None:
        self.server = server
        self.closed = False

    async def fetchval(self, query: str, *args: Any) -> Any:
        if self.server.partitioned:
            await asyncio.Event().wait()  # the network swallows the query: no answer ever
        if "pg_try_advisory_lock" in query:
            if self.server.holder is None:
                self.server.holder = self
            return self.server.holder is self
        return 1

    async def close(self) -> None:
        if self.server.partitioned:
            await asyncio.Event().wait()
        self.terminate()

    def terminate(self) -> None:
        self.closed = True
        if self.server.holder is self and not self.server.partitioned:  # the server never hears it
            self.server.holder = None


async def _started(election: Election) -> asyncio.Task[None]:
    return asyncio.create_task(election.run())


async def _stop(*tasks: asyncio.Task[None]) -> None:
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def test_lock_key_is_stable_and_distinct_per_vantage() -> None:
    assert lock_key("default") == lock_key("default")
    assert lock_key("default") != lock_key("eu-west")
    assert -(2**63) <= lock_key("eu-west") < 2**63


def test_asyncpg_dsn_comes_from_the_sqlalchemy_url() -> None:
    assert asyncpg_dsn(URL) == "postgresql://monitor:s3cret-pw@db.example:5432/monitor"
    assert asyncpg_dsn("postgresql://u@h/d") == "postgresql://u@h/d"
    assert asyncpg_dsn("sqlite+aiosqlite:///history.db") is None


async def test_sqlite_always_leads_without_connecting() -> None:
    server = FakeLock()
    election = Election("sqlite+aiosqlite:///x.db", "default", clock=FakeClock(), connect=server.connect)
    task = await _started(election)
    await asyncio.wait_for(election.wait_for(Role.LEADER), 5)
    assert not election.elected and server.dsns == []
    await _stop(task)


async def test_second_monitor_stays_follower_while_the_first_leads() -> None:
    clock, server = FakeClock(), FakeLock()
    a = Election(URL, "default", clock=clock, connect=server.connect)
    b = Election(URL, "default", clock=clock, connect=server.connect)
    ta = await _started(a)
    await clock.settle()
    tb = await _started(b)
    await clock.advance(10)
    assert (a.role, b.role) == (Role.LEADER, Role.FOLLOWER)
    assert b.attempts >= 5
    await _stop(ta, tb)


async def test_follower_takes_over_within_retry_after_the_leader_closes() -> None:
    clock, server = FakeClock(), FakeLock()
    a = Election(URL, "default", clock=clock, connect=server.connect, retry_s=1.0)
    b = Election(URL, "default", clock=clock, connect=server.connect, retry_s=1.0)
    ta = await _started(a)
    await clock.settle()
    tb = await _started(b)
    await clock.advance(3)
    await _stop(ta)
    await a.close()
    assert a.role is Role.FOLLOWER
    await clock.advance(1.0)
    assert b.role is Role.LEADER
    await _stop(tb)


async def test_partitioned_leader_demotes_after_its_check_times_out() -> None:
    clock, server = FakeClock(), FakeLock()
    roles: list[Role] = []
    a = Election(URL, "default", clock=clock, connect=server.connect, check_s=2, check_timeout_s=2)
    a._on_change = roles.append
    task = await _started(a)
    await clock.advance(1)
    assert a.role is Role.LEADER
    conn = server.holder
    assert conn is not None
    server.partitioned = True
    await clock.advance(2 + 2)  # the next check, then its timeout
    assert not a.is_leader
    assert conn.closed  # dropped without waiting for the dead network
    assert roles == [Role.LEADER, Role.FOLLOWER]
    await _stop(task)


async def test_async_on_change_is_awaited_once_per_change() -> None:
    clock, server = FakeClock(), FakeLock()
    seen: list[Role] = []

    async def on_change(role: Role) -> None:
        seen.append(role)

    a = Election(URL, "default", clock=clock, connect=server.connect, on_change=on_change)
    task = await _started(a)
    await clock.advance(20)
    assert seen == [Role.LEADER] and a.changes == 1
    await _stop(task)


async def test_role_change_log_names_the_database_without_its_password() -> None:
    clock, server = FakeClock(), FakeLock()
    a = Election(URL, "default", clock=clock, connect=server.connect)
    with structlog.testing.capture_logs() as logs:
        task = await _started(a)
        await clock.advance(1)
        await _stop(task)
    changes = [e for e in logs if e["event"] == "role changed"]
    assert [e["role"] for e in changes] == ["leader"]
    assert "db.example" in changes[0]["database"]
    assert "s3cret-pw" not in repr(logs)


@pytest.mark.parametrize("fail", ["connect", "lock"])
async def test_unreachable_database_keeps_a_follower_retrying(fail: str) -> None:
    clock = FakeClock()
    tries = 0

    async def connect(dsn: str) -> FakeConn:
        nonlocal tries
        tries += 1
        if fail == "connect":
            raise OSError("connection refused")
        server = FakeLock()
        server.partitioned = True
        return FakeConn(server)

    a = Election(URL, "default", clock=clock, connect=connect, retry_s=1, check_timeout_s=1)
    task = await _started(a)
    await clock.advance(30)
    assert a.role is Role.FOLLOWER and tries >= 5
    await _stop(task)
