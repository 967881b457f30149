"""Leader election: of the monitors sharing one PostgreSQL database and one vantage, one leads.

The leader is whoever holds a PostgreSQL session-level advisory lock (`pg_try_advisory_lock`) whose
key is derived from the vantage name. The lock lives on a dedicated asyncpg connection, outside
SQLAlchemy's pool: the pool recycles and pings its connections, and a lock taken on one of them
would move or vanish with it. The lock ends with the session, so a leader that dies (even by
SIGKILL: the kernel closes its socket) frees it at once and a follower, retrying every `retry_s`,
takes over.

A leader that can no longer reach the database (its check `SELECT 1` fails or does not answer within
`check_timeout_s`) demotes itself at once: it cannot know whether the server still counts its
session, so it must assume another monitor may lead. The server, in turn, drops a session whose
client went silent after TCP keepalives (asked for below), which frees the lock later than the old
leader demoted itself: two leaders never overlap unless the clocks of both machines stall.

Any database that is not PostgreSQL (SQLite) has one monitor: it always leads, nothing is elected.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
from collections.abc import Awaitable, Callable
from enum import StrEnum
from typing import Any, Protocol, TypeVar

from sqlalchemy.engine import URL, make_url

from monitor.core.clock import SYSTEM_CLOCK, Clock
from monitor.logging import get_logger

__all__ = ["Election", "Role", "asyncpg_dsn", "lock_key"]

log = get_logger("monitor.ha.election")

T = TypeVar("T")

# Fixed namespace: changing it would let an old and a new version lead the same vantage at once.
_NAMESPACE = b"libertai-monitor/ha/election/v1\x00"

# Server-side keepalives for the lock's session: the server frees the lock of a leader cut off by
# the network after about idle + interval * count seconds, longer than the leader takes to demote
# itself (check_s + check_timeout_s with the defaults) and short enough for a takeover in seconds.
KEEPALIVE_SETTINGS = {
    "tcp_keepalives_idle": "6",
    "tcp_keepalives_interval": "2",
    "tcp_keepalives_count": "3",
    "application_name": "libertai-monitor leader lock",
}


class Role(StrEnum):
    LEADER = "leader"
    FOLLOWER = "follower"


class LockConnection(Protocol):
    """What the election needs of an asyncpg connection (a fake one in unit tests)."""

    async def fetchval(self, query: str, *args: Any) -> Any: ...

    async def close(self) -> None: ...

    def terminate(self) -> None: ...


Connect = Callable[[str], Awaitable[LockConnection]]
OnChange = Callable[[Role], Awaitable[None] | None]


def lock_key(vantage: str) -> int:
    """The advisory lock key of a vantage: a stable signed 64-bit hash (bigint's range)."""
    digest = hashlib.blake2b(_NAMESPACE + vantage.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def asyncpg_dsn(url: str | URL) -> str | None:
    """The asyncpg DSN of a PostgreSQL SQLAlchemy URL (`postgresql+asyncpg://...`), None for any
    other database (no election). The DSN carries the password: never log it (log `describe`)."""
    u = make_url(url)
    if u.get_backend_name() not in {"postgresql", "postgres"}:
        return None
    return u.set(drivername="postgresql").render_as_string(hide_password=False)


def describe_url(url: str | URL) -> str:
    """The URL for logs: the password masked."""
    return make_url(url).render_as_string(hide_password=True)


async def _asyncpg_connect(dsn: str) -> LockConnection:
    import asyncpg  # type: ignore[import-untyped]  # the `postgres` extra; only PostgreSQL URLs get here

    conn: LockConnection = await asyncpg.connect(dsn, server_settings=KEEPALIVE_SETTINGS)
    return conn


async def within(clock: Clock, seconds: float, coro: Awaitable[T]) -> T:
    """`coro`'s result, or TimeoutError once `seconds` passed on `clock` (cancelling it).
    asyncio's own timeouts follow the loop's clock, which a FakeClock does not move."""
    work = asyncio.ensure_future(coro)
    timer = asyncio.ensure_future(clock.sleep(seconds))
    try:
        await asyncio.wait({work, timer}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        timer.cancel()
        if not work.done():
            work.cancel()
            await asyncio.gather(work, return_exceptions=True)
    if work.cancelled():
        raise TimeoutError(f"no answer within {seconds:g} s")
    return work.result()


class Election:
    """Elects the leader of one vantage; `role` says which this process is.

    `run()` loops until cancelled: a follower tries the lock every `retry_s`, a leader checks its
    connection every `check_s`. Each role change is logged once and handed to `on_change` (sync or
    async; awaited before the loop goes on, so the service starts or stops its probes in order) and
    to every `wait_for(role)` caller. Start as a follower: nothing probes before the lock is held.
    """

    def __init__(
        self,
        url: str | URL,
        vantage: str,
        *,
        clock: Clock = SYSTEM_CLOCK,
        retry_s: float = 1.0,
        check_s: float = 2.0,
        check_timeout_s: float = 2.0,
        on_change: OnChange | None = None,
        connect: Connect = _asyncpg_connect,
    ) -> None:
        self.vantage = vantage
        self.key = lock_key(vantage)
        self._dsn = asyncpg_dsn(url)
        self._where = describe_url(url)
        self._clock = clock
        self._retry_s = retry_s
        self._check_s = check_s
        self._check_timeout_s = check_timeout_s
        self._on_change = on_change
        self._connect = connect
        self._conn: LockConnection | None = None
        self._role = Role.FOLLOWER
        self._changed = asyncio.Condition()
        self.changes = 0  # role changes so far (metrics, tests)
        self.attempts = 0  # tries for the lock so far (tests: "it tried and stayed a follower")

    @property
    def elected(self) -> bool:
        """False when there is nothing to elect (not PostgreSQL): this process always leads."""
        return self._dsn is not None

    @property
    def role(self) -> Role:
        return self._role

    @property
    def is_leader(self) -> bool:
        return self._role is Role.LEADER

    async def wait_for(self, role: Role) -> None:
        """Return once this process has `role` (at once if it has it already)."""
        await self.wait_until(lambda: self._role is role)

    async def wait_until(self, predicate: Callable[[], bool]) -> None:
        """Return once `predicate` holds, checked after every role change and every try."""
        async with self._changed:
            await self._changed.wait_for(predicate)

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def run(self) -> None:
        """Take part in the election until cancelled (then the lock is released: see `close`)."""
        try:
            if self._dsn is None:
                await self._set(Role.LEADER, reason="no election outside PostgreSQL")
                await asyncio.Event().wait()  # nothing more to do until cancelled
            while True:
                if self._role is Role.LEADER:
                    await self._clock.sleep(self._check_s)
                    await self._check()
                else:
                    await self._try_lock()
                    if self._role is Role.FOLLOWER:
                        await self._clock.sleep(self._retry_s)
        finally:
            # No round trip on the way out (cancelled tasks must not wait on a dead network): the
            # server sees the socket close and ends the session, which frees the lock.
            await self._drop_connection(graceful=False)

    async def close(self) -> None:
        """Release the lock (by ending its session) and become a follower. Cancel `run()` first:
        while it runs it would try for the lock again."""
        await self._drop_connection(graceful=True)
        if self._dsn is not None:
            await self._set(Role.FOLLOWER, reason="closed")

    # -- steps ------------------------------------------------------------------------------

    async def _try_lock(self) -> None:
        assert self._dsn is not None
        self.attempts += 1
        try:
            conn = self._conn
            if conn is None:
                conn = self._conn = await within(
                    self._clock, self._check_timeout_s * 2, self._connect(self._dsn)
                )
            got = await within(
                self._clock, self._check_timeout_s, conn.fetchval("SELECT pg_try_advisory_lock($1)", self.key)
            )
        except asyncio.CancelledError:
            raise
        except Exception as error:
            log.debug("leader lock unavailable", vantage=self.vantage, error=type(error).__name__)
            await self._drop_connection(graceful=False)
            await self._notify()
            return
        if got is True:
            await self._set(Role.LEADER, reason="lock acquired")
        await self._notify()

    async def _check(self) -> None:
        conn = self._conn
        try:
            if conn is None:
                raise ConnectionError("no lock connection")
            await within(self._clock, self._check_timeout_s, conn.fetchval("SELECT 1"))
        except asyncio.CancelledError:
            raise
        except Exception as error:
            await self._drop_connection(graceful=False)
            await self._set(Role.FOLLOWER, reason=f"lock connection lost ({type(error).__name__})")
            # Let the followers, whose connections may be sound, try first.
            await self._clock.sleep(self._retry_s * 2)

    async def _drop_connection(self, *, graceful: bool) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        if graceful:
            try:
                await within(self._clock, self._check_timeout_s, conn.close())
                return
            except Exception:
                pass
        conn.terminate()  # no round trip: the network may be gone

    async def _set(self, role: Role, *, reason: str) -> None:
        if role is self._role:
            return
        self._role = role
        self.changes += 1
        log.info("role changed", role=role.value, vantage=self.vantage, reason=reason, database=self._where)
        await self._notify()
        if self._on_change is not None:
            try:
                result = self._on_change(role)
                if inspect.isawaitable(result):
                    await result
            except asyncio.CancelledError:
                raise
            except Exception as error:  # the election must go on: a dead loop would never demote
                log.error("role change handler failed", role=role.value, error=type(error).__name__)
