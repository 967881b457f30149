"""Every probe result submitted ends up in the database or counted as dropped with its reason:
through faults that clear (a lock held by another process, a read-only database, a full disk, a
connection closed under the writer) nothing is dropped; a fault longer than the queue holds drops
the overflow, counted. The writer's waits run on a fake clock: nothing here sleeps for a timing."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import event, exc, text
from sqlalchemy.ext.asyncio import AsyncEngine

from monitor.core.clock import FakeClock
from monitor.store import Store
from monitor.store.core import rejects_rows
from monitor.store.engine import sqlite_path, write_transaction

from .conftest import T0, MakeResult, StatementFault, sqlite_only

pytestmark = pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning")

RETRY_MAX_S = 2.0


async def _until(condition: Callable[[], bool], clock: FakeClock, what: str) -> None:
    """Let time pass on `clock` (the writer's backoff) until `condition`: database work runs in the
    driver's thread, so each step also waits a little for real, within a generous bound."""
    for _ in range(2000):
        if condition():
            return
        await clock.advance(0.5)
        await asyncio.sleep(0.005)
    raise AssertionError(f"not reached: {what}")


async def _wait(condition: Callable[[], bool], what: str) -> None:
    """Wait for work in the driver's thread (no time passes on the fake clock)."""
    for _ in range(2000):
        if condition():
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"not reached: {what}")


async def _open(db_url: str, clock: FakeClock, **options: Any) -> Store:
    store = await Store.open(db_url, clock=clock, retry_initial_s=0.5, retry_max_s=RETRY_MAX_S, **options)
    await store.upgrade()
    store.start_writer()
    return store


async def _stored(store: Store) -> int:
    async with store.engine.connect() as conn:
        return int((await conn.execute(text("SELECT count(*) FROM probe_results"))).scalar_one())


async def _accounted_after_recovery(store: Store, clock: FakeClock, submitted: int) -> None:
    await _until(lambda: store.stats.queue_depth == 0, clock, "the queue written")
    await store.flush()
    stats = store.stats
    assert (stats.healthy, stats.dropped, await _stored(store)) == (True, 0, submitted)
    assert stats.rows_written == submitted


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


async def test_a_lock_held_by_another_process_loses_no_result(
    db_url: str, backend: str, clock: FakeClock, make_result: MakeResult
) -> None:
    sqlite_only(backend, "another process holds SQLite's write lock")
    store = await _open(db_url, clock, busy_timeout_ms=0)
    path = sqlite_path(db_url)
    assert path is not None
    blocker = sqlite3.connect(path, isolation_level=None)
    try:
        blocker.execute("BEGIN EXCLUSIVE")
        for i in range(300):
            store.submit(make_result(T0 + i, host=f"https://h{i % 7}.example"))
        await _until(lambda: store.stats.write_errors >= 3, clock, "writes failing")
        for i in range(300, 400):  # still accepted while locked
            store.submit(make_result(T0 + i))
        assert store.stats.dropped == 0
        blocker.execute("ROLLBACK")
        await _accounted_after_recovery(store, clock, 400)
    finally:
        blocker.close()
        await store.close()


class _Fault:
    """A fault on the connections the engine opens from now on (the pool is emptied): SQLite
    `PRAGMA query_only` (read-only: chmod cannot show this to a test running as root) or
    `PRAGMA max_page_count` (a full disk)."""

    def __init__(self, engine: AsyncEngine, pragma: str) -> None:
        self.engine = engine
        self.pragma = pragma

    def _on_connect(self, dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute(self.pragma)
        cursor.close()

    async def set(self) -> None:
        event.listen(self.engine.sync_engine, "connect", self._on_connect)
        await self.engine.dispose()

    async def clear(self) -> None:
        event.remove(self.engine.sync_engine, "connect", self._on_connect)
        await self.engine.dispose()


async def test_a_read_only_database_that_is_writable_again_loses_no_result(
    db_url: str, backend: str, clock: FakeClock, make_result: MakeResult
) -> None:
    sqlite_only(backend, "PRAGMA query_only")
    store = await _open(db_url, clock)
    fault = _Fault(store.engine, "PRAGMA query_only = ON")
    try:
        await fault.set()
        for i in range(500):
            store.submit(make_result(T0 + i))
        await _until(lambda: store.stats.write_errors >= 3, clock, "writes failing")
        assert "read" in (store.stats.last_error or "").lower()
        await fault.clear()
        await _accounted_after_recovery(store, clock, 500)
    finally:
        await store.close()


async def test_a_full_disk_that_is_grown_loses_no_result(
    db_url: str, backend: str, clock: FakeClock, make_result: MakeResult
) -> None:
    sqlite_only(backend, "a full disk is simulated with PRAGMA max_page_count")
    store = await _open(db_url, clock)
    async with store.engine.connect() as conn:
        pages = (await conn.execute(text("PRAGMA page_count"))).scalar()
    fault = _Fault(store.engine, f"PRAGMA max_page_count = {pages}")
    try:
        await fault.set()
        for i in range(5000):
            store.submit(make_result(T0 + i, host=f"https://h{i % 50}.example"))
        await _until(lambda: store.stats.write_errors >= 3, clock, "writes failing")
        assert "full" in (store.stats.last_error or "")
        await fault.clear()
        await _accounted_after_recovery(store, clock, 5000)
    finally:
        await store.close()


@pytest.fixture
def closed_connection(statement_fault: StatementFault) -> Callable[[AsyncEngine], Callable[[], None]]:
    """Installs a fault: statements fail as aiosqlite fails them on a closed connection (a
    ValueError, not a database error). Returns a function that removes it."""

    def fail(*_args: Any) -> None:
        raise ValueError("Connection closed")

    return lambda engine: statement_fault(engine, fail)


async def test_a_connection_closed_under_the_writer_is_a_failure_not_rejected_rows(
    db_url: str,
    clock: FakeClock,
    make_result: MakeResult,
    closed_connection: Callable[[AsyncEngine], Callable[[], None]],
) -> None:
    store = await _open(db_url, clock)
    try:
        remove = closed_connection(store.engine)
        for i in range(40):
            store.submit(make_result(T0 + i))
        await _until(lambda: store.stats.write_errors >= 3, clock, "writes failing")
        assert store.stats.dropped == 0
        remove()
        await _accounted_after_recovery(store, clock, 40)
    finally:
        await store.close()


def test_only_errors_about_the_rows_count_as_rejected_rows() -> None:
    orig = Exception("x")
    assert rejects_rows(exc.IntegrityError("INSERT", {}, orig))
    assert rejects_rows(UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed"))
    assert not rejects_rows(exc.OperationalError("INSERT", {}, orig))
    assert not rejects_rows(ValueError("no active connection"))
    assert not rejects_rows(RuntimeError("something else"))


async def test_a_fault_longer_than_the_queue_holds_drops_the_overflow_counted(
    db_url: str, backend: str, clock: FakeClock, make_result: MakeResult
) -> None:
    sqlite_only(backend, "another process holds SQLite's write lock")
    store = await _open(db_url, clock, busy_timeout_ms=0, queue_size=10)
    path = sqlite_path(db_url)
    assert path is not None
    blocker = sqlite3.connect(path, isolation_level=None)
    try:
        blocker.execute("BEGIN EXCLUSIVE")
        store.submit(make_result(T0))
        await _until(lambda: store.stats.write_errors >= 1, clock, "writes failing")
        for i in range(1, 25):
            store.submit(make_result(T0 + i))
        blocker.execute("ROLLBACK")
        await _until(lambda: store.stats.queue_depth == 0, clock, "the queue written")
        await store.flush()
        stats = store.stats
        stored = await _stored(store)
        assert stored + stats.dropped == 25
        assert stats.dropped == 14  # one batch in hand, ten queued: the rest did not fit
        assert stats.dropped_by_reason["queue_full"] == 14
    finally:
        blocker.close()
        await store.close()


async def test_every_drop_is_counted_with_its_reason(
    db_url: str, clock: FakeClock, make_result: MakeResult
) -> None:
    store = await _open(db_url, clock)
    store.submit(make_result(T0, kind="smoke-signal"))
    store.submit(make_result(T0 + 1))
    await store.flush()
    await store.close()
    store.submit(make_result(T0 + 2))
    assert dict(store.stats.dropped_by_reason) == {
        "queue_full": 0,
        "unstorable": 1,
        "rejected": 0,
        "duplicate": 0,
        "shutdown": 1,
    }
    assert store.stats.dropped == 2


async def test_a_result_waits_at_most_the_flush_interval(
    db_url: str, clock: FakeClock, make_result: MakeResult
) -> None:
    store = await _open(db_url, clock, flush_interval_s=0.25)
    try:
        store.submit(make_result(T0))
        await clock.advance(0.2)
        assert store.stats.rows_written == 0  # still gathering its batch
        await clock.advance(0.05)
        await _wait(lambda: store.stats.rows_written == 1, "the result written")
    finally:
        await store.close()


async def test_the_flush_interval_counts_from_when_a_result_was_queued(
    db_url: str, clock: FakeClock, make_result: MakeResult
) -> None:
    """A result queued while the batch ahead of it was being written goes when it has waited the
    interval, not an interval after that write ended."""
    store = await _open(db_url, clock, flush_interval_s=1.0)
    release = asyncio.Event()
    holding = asyncio.Event()

    async def hold_the_write_lock() -> None:
        async with write_transaction(store.engine) as conn:
            await conn.execute(text("SELECT 1"))
            holding.set()
            await release.wait()

    holder = asyncio.create_task(hold_the_write_lock())
    try:
        await holding.wait()
        store.submit(make_result(T0))
        await clock.advance(1.0)  # the first batch goes, and waits for the lock
        store.submit(make_result(T0 + 1))  # queued at 1.0: due at 2.0
        await clock.advance(0.9)
        release.set()
        await holder
        await _wait(lambda: store.stats.rows_written == 1, "the first batch written")
        await clock.advance(0.1)  # 2.0: not 1.9 + 1.0
        await _wait(lambda: store.stats.rows_written == 2, "the second result written")
    finally:
        release.set()
        await store.close()


_CHILD = """
import asyncio, sys, time
from monitor.core.results import Outcome, ProbeKind, ProbeResult
from monitor.store import Store

async def main() -> None:
    store = await Store.open(sys.argv[1])
    await store.upgrade()
    store.start_writer()
    n = 0
    while True:
        for _ in range(36):  # about 360 results a second
            store.submit(ProbeResult(model="m", host="https://h.example", kind=ProbeKind.HEALTH,
                                     outcome=Outcome.OK, started_at=1_700_000_000 + n / 1000))
            n += 1
        print(n, time.monotonic(), flush=True)
        await asyncio.sleep(0.1)

asyncio.run(main())
"""


@pytest.mark.slow
@pytest.mark.subprocess
async def test_sigkill_loses_only_results_younger_than_the_wait_bound(tmp_path: Any) -> None:
    import signal
    import sys
    import time

    db_url = f"sqlite+aiosqlite:///{tmp_path / 'history.db'}"
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _CHILD, db_url, stdout=asyncio.subprocess.PIPE
    )
    assert child.stdout is not None
    progress: list[tuple[int, float]] = []
    while len(progress) < 30:  # about 3 s of load
        line = await asyncio.wait_for(child.stdout.readline(), 30)
        count, at = line.split()
        progress.append((int(count), float(at)))
    child.send_signal(signal.SIGKILL)
    killed_at = time.monotonic()
    await child.wait()
    # Submitted more than the bound (the flush interval, plus a write) before the kill: stored.
    due = max(count for count, at in progress if at < killed_at - 1.0)
    store = await Store.open(db_url)
    try:
        assert len(await store.load_recent_results(0, per_host_limit=100_000)) >= due
    finally:
        await store.close()
