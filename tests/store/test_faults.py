"""Faults the store must come through without a restart, and data it must not choke on."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from monitor.cli import main
from monitor.store import DiscoveryRecord, SchemaTooNewError, Store
from monitor.store.engine import write_transaction
from tests.pg import PgServer

from .conftest import T0, Logs, MakeResult, StatementFault

pytestmark = pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning")


async def _wait_for(condition: Callable[[], bool], seconds: float = 10.0) -> None:
    for _ in range(int(seconds / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not met in time")


class ReadOnlySwitch:
    """Makes the database refuse writes to connections opened from now on, and accept them again.
    SQLite: `PRAGMA query_only` on each new connection (as a connection opened on a read-only file
    stays read-only; chmod cannot show this to a test running as root). PostgreSQL: the database's
    `default_transaction_read_only`, which a session takes when it starts."""

    def __init__(
        self, backend: str, db_url: str, engine: AsyncEngine, request: pytest.FixtureRequest
    ) -> None:
        self.backend = backend
        self.engine = engine
        self.on = False
        if backend == "sqlite":
            event.listen(engine.sync_engine, "connect", self._on_connect)
        else:
            self.server: PgServer = request.getfixturevalue("pg_server")
            self.database = str(make_url(db_url).database)

    def _on_connect(self, dbapi_connection: Any, _record: Any) -> None:
        if self.on:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA query_only = ON")
            cursor.close()

    def set(self, on: bool) -> None:
        self.on = on
        if self.backend != "sqlite":
            value = "SET default_transaction_read_only = on" if on else "RESET default_transaction_read_only"
            self.server.sql("postgres", f"ALTER DATABASE {self.database} {value}")


async def test_a_database_that_was_read_only_is_written_again_without_restart(
    db_url: str, backend: str, request: pytest.FixtureRequest, make_result: MakeResult
) -> None:
    store = await Store.open(db_url, retry_initial_s=0.02, retry_max_s=0.05)
    await store.upgrade()
    switch = ReadOnlySwitch(backend, db_url, store.engine, request)
    switch.set(True)
    await store.engine.dispose()  # every connection from now on is opened while read-only
    store.start_writer()
    try:
        for i in range(50):
            store.submit(make_result(T0 + i))
        await _wait_for(lambda: store.stats.write_errors >= 2)
        assert store.stats.healthy is False
        assert "read" in (store.stats.last_error or "").lower()
        switch.set(False)
        async with asyncio.timeout(10):
            await store.flush()
        stats = store.stats
        assert (stats.healthy, stats.rows_written, stats.dropped, stats.queue_depth) == (True, 50, 0, 0)
    finally:
        switch.set(False)
        await store.close()


@pytest.fixture
def batches_fail(statement_fault: StatementFault) -> Callable[[AsyncEngine], Callable[[], None]]:
    """Installs a fault: inserts of probe results fail as on a full disk; other writes work.
    Returns a function that removes it."""

    def install(engine: AsyncEngine) -> Callable[[], None]:
        dbapi = engine.dialect.loaded_dbapi

        def fail(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
            words = statement.upper().split()
            if words[0] == "INSERT" and "PROBE_RESULTS" in words[:5]:
                raise dbapi.OperationalError("database or disk is full")

        return statement_fault(engine, fail)

    return install


async def test_a_small_write_that_works_while_batches_fail_does_not_report_healthy(
    db_url: str, make_result: MakeResult, batches_fail: Callable[[AsyncEngine], Callable[[], None]]
) -> None:
    store = await Store.open(db_url, retry_initial_s=0.02, retry_max_s=0.05)
    await store.upgrade()
    remove = batches_fail(store.engine)
    store.start_writer()
    try:
        for i in range(100):
            store.submit(make_result(T0 + i))
        await _wait_for(lambda: store.stats.write_errors >= 2)
        await store.record_discovery(DiscoveryRecord(T0, True, 0.1, 1, 1))  # a small write works
        await store.save_best("llama-3", "https://a.libertai.io", T0)
        assert store.stats.healthy is False
        assert "full" in (store.stats.last_error or "")
        remove()
        async with asyncio.timeout(10):
            await store.flush()
        assert (store.stats.healthy, store.stats.rows_written) == (True, 100)
    finally:
        await store.close()


async def test_one_row_the_database_cannot_take_costs_only_that_row(
    store: Store, make_result: MakeResult, logs: Logs
) -> None:
    bad = "bad-\ud800-id"  # a lone surrogate: valid in a Python str, not encodable as UTF-8
    for i in range(30):
        store.submit(make_result(T0 + i, model="llama-3"))
        if i == 17:
            store.submit(make_result(T0 + i, model=bad))
        store.submit(make_result(T0 + i, model="qwen"))
    async with asyncio.timeout(10):
        await store.flush()
    stats = store.stats
    assert (stats.rows_written, stats.dropped, stats.queue_depth) == (60, 1, 0)
    assert stats.healthy is True
    stored = await store.load_recent_results(0)
    assert sorted({r.model for r in stored}) == ["llama-3", "qwen"]
    store.submit(make_result(T0 + 99, model="qwen"))  # later batches are written as usual
    await store.flush()
    assert store.stats.rows_written == 61
    assert any("rejected" in e["event"] for e in logs)
    assert not any(bad in str(v) for e in logs for v in e.values())


async def _set_revision(db_url: str, revision: str) -> None:
    store = await Store.open(db_url)
    try:
        await store.upgrade()
        async with store.engine.begin() as conn:
            await conn.execute(text(f"UPDATE alembic_version SET version_num = '{revision}'"))
    finally:
        await store.close()


async def test_a_schema_newer_than_this_version_stops_with_what_to_do(db_url: str) -> None:
    await _set_revision(db_url, "9999")
    store = await Store.open(db_url)
    try:
        with pytest.raises(SchemaTooNewError) as caught:
            await store.upgrade()
    finally:
        await store.close()
    message = str(caught.value)
    assert "\n" not in message
    assert "9999" in message and "newer version" in message
    assert "install" in message  # what to do


async def test_db_upgrade_of_a_newer_schema_exits_2_with_one_line(
    db_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    await _set_revision(db_url, "9999")
    monkeypatch.setenv("LIBERTAI_MONITOR_DATABASE_URL", db_url)
    # main() runs its own event loop: run it in a thread, away from the test's loop.
    code = await asyncio.to_thread(main, ["db", "upgrade"])
    said = [line for line in capsys.readouterr().err.splitlines() if line.startswith("libertai-monitor:")]
    assert code == 2
    assert len(said) == 1
    assert "9999" in said[0] and "newer version" in said[0]


async def test_postgres_connections_killed_by_the_server_cost_no_result(
    db_url: str, backend: str, request: pytest.FixtureRequest, make_result: MakeResult
) -> None:
    if backend != "postgresql":
        pytest.skip("PostgreSQL only: the server ends the store's sessions")
    server: PgServer = request.getfixturevalue("pg_server")
    database = str(make_url(db_url).database)
    store = await Store.open(db_url, retry_initial_s=0.02, retry_max_s=0.05)
    await store.upgrade()
    store.start_writer()
    try:
        for i in range(20):
            store.submit(make_result(T0 + i))
        await store.flush()
        killed = server.sql(
            "postgres",
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            f"WHERE datname = '{database}' AND pid <> pg_backend_pid()",
        )
        assert int(killed) >= 1  # the pooled connection was there, and is gone now
        for i in range(20, 40):
            store.submit(make_result(T0 + i))
        async with asyncio.timeout(10):
            await store.flush()
        stats = store.stats
        assert (stats.rows_written, stats.dropped, stats.healthy) == (40, 0, True)
        assert len(await store.load_recent_results(0)) == 40
    finally:
        await store.close()


async def test_writers_of_one_process_queue_for_the_database_instead_of_failing(db_url: str) -> None:
    """A write transaction that spans many turns of a busy event loop: another write of the same
    process waits for it, rather than giving up with "database is locked" (SQLite, no busy wait)."""
    store = await Store.open(db_url, busy_timeout_ms=0)
    try:
        await store.upgrade()
        release = asyncio.Event()

        async def long_write() -> None:
            async with write_transaction(store.engine) as conn:
                await conn.execute(text("SELECT 1"))
                await release.wait()

        holder = asyncio.create_task(long_write())
        await asyncio.sleep(0.05)  # the holder is inside its transaction
        second = asyncio.create_task(store.save_best("m", "https://a.example", T0))
        await asyncio.wait({second}, timeout=0.5)  # without the queue it has failed by now
        release.set()
        await holder
        await second  # did not raise
        assert await store.load_best() == {"m": "https://a.example"}
    finally:
        await store.close()
