"""Probe results: the queue, the batched writer, failures, and reading them back."""

from __future__ import annotations

import asyncio
import dataclasses
import math
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import event, text

from monitor.core.results import Outcome, ProbeKind, ProbeResult
from monitor.store import Store
from monitor.store.engine import sqlite_path

from .conftest import T0, Logs, MakeResult, sqlite_only

pytestmark = pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning")


async def _wait_for(condition: Callable[[], bool], seconds: float = 5.0) -> None:
    for _ in range(int(seconds / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not met in time")


def _stored(result: ProbeResult) -> ProbeResult:
    return dataclasses.replace(result, detail="")


async def test_submit_and_flush_round_trip_every_field(store: Store, make_result: MakeResult) -> None:
    results = [
        make_result(T0 + 0.001, kind=ProbeKind.HEALTH, status=200, connect_ms=2.0, total_ms=15.0),
        make_result(
            T0 + 1.5,
            kind=ProbeKind.COMPLETION,
            outcome=Outcome.STREAM_ERROR,
            status=200,
            connect_ms=7.0,
            ttft_ms=812.0,
            total_ms=1234.0,
            host="https://b.libertai.io",
        ),
        make_result(
            T0 + 2.25,
            kind=ProbeKind.AUTH,
            outcome=Outcome.UNSUPPORTED,
            status=405,
            model="qwen-coder",
        ),
        make_result(T0 + 3.999, kind=ProbeKind.EMBEDDING, outcome=Outcome.OK, model="bge-m3"),
    ]
    for r in results:
        store.submit(r)
    await store.flush()
    assert await store.load_recent_results(T0) == [_stored(r) for r in results]


async def test_none_fields_round_trip_as_none(store: Store, make_result: MakeResult) -> None:
    result = make_result(
        T0,
        kind=ProbeKind.COMPLETION,
        outcome=Outcome.TIMEOUT,
        status=None,
        connect_ms=None,
        ttft_ms=None,
        total_ms=None,
    )
    store.submit(result)
    await store.flush()
    assert await store.load_recent_results(T0) == [result]


async def test_times_keep_milliseconds_and_durations_whole_milliseconds(
    store: Store, make_result: MakeResult
) -> None:
    # Storage resolution (see monitor/store/schema.py): `at` in ms, durations rounded to 1 ms.
    store.submit(make_result(T0 + 0.0123456, connect_ms=12.4, total_ms=40.6, status=202))
    await store.flush()
    [back] = await store.load_recent_results(T0)
    assert back.started_at == T0 + 0.012
    assert (back.connect_ms, back.total_ms, back.status) == (12.0, 41.0, 202)


async def test_detail_is_never_stored(
    store: Store, make_result: MakeResult, db_url: str, backend: str
) -> None:
    sqlite_only(backend, "reads the database's files")
    store.submit(make_result(detail="Bearer sk-not-a-real-key-0123456789"))
    await store.flush()
    await store.close()
    path = sqlite_path(db_url)
    assert path is not None
    blob = b"".join(p.read_bytes() for p in path.parent.iterdir() if p.name.startswith(path.name))
    assert b"sk-not-a-real-key" not in blob


async def test_two_probes_started_in_the_same_millisecond_are_both_kept(
    store: Store, make_result: MakeResult
) -> None:
    store.submit(make_result(T0, outcome=Outcome.CONNECT_ERROR))
    store.submit(make_result(T0, outcome=Outcome.OK))
    await store.flush()
    back = await store.load_recent_results(T0)
    assert [r.outcome for r in back] == [Outcome.CONNECT_ERROR, Outcome.OK]
    assert [r.started_at for r in back] == [T0, T0 + 0.001]
    assert store.stats.rows_written == 2


async def test_per_host_limit_keeps_the_newest_per_model_host_and_kind(
    store: Store, make_result: MakeResult
) -> None:
    hosts = ["https://a.libertai.io", "https://b.libertai.io"]
    for host in hosts:
        for i in range(50):
            store.submit(make_result(T0 + i * 30, host=host))
        for i in range(20):
            store.submit(make_result(T0 + i * 300 + 1, host=host, kind=ProbeKind.COMPLETION))
    await store.flush()
    back = await store.load_recent_results(T0, per_host_limit=10)
    assert len(back) == 2 * 2 * 10
    assert [r.started_at for r in back] == sorted(r.started_at for r in back)  # oldest first
    for host in hosts:
        health = [r.started_at for r in back if r.host == host and r.kind is ProbeKind.HEALTH]
        completion = [r.started_at for r in back if r.host == host and r.kind is ProbeKind.COMPLETION]
        assert health == [T0 + i * 30 for i in range(40, 50)]
        assert completion == [T0 + i * 300 + 1 for i in range(10, 20)]


async def test_load_recent_results_starts_at_since(store: Store, make_result: MakeResult) -> None:
    for i in range(10):
        store.submit(make_result(T0 + i))
    await store.flush()
    back = await store.load_recent_results(T0 + 5)
    assert [r.started_at for r in back] == [T0 + i for i in range(5, 10)]


async def test_batched_writer_writes_20000_rows(store: Store, make_result: MakeResult) -> None:
    hosts = [f"https://h{i}.libertai.io" for i in range(100)]
    for i in range(20_000):
        store.submit(
            make_result(T0 + i * 0.3, host=hosts[i % 100], model=f"m{i % 4}", total_ms=float(i % 997))
        )
    await store.flush()
    stats = store.stats
    assert (stats.rows_written, stats.dropped, stats.write_errors, stats.queue_depth) == (20_000, 0, 0, 0)
    async with store.engine.connect() as conn:
        count, total = (await conn.execute(text("SELECT count(*), sum(total_ms) FROM probe_results"))).one()
    assert count == 20_000
    assert total == sum(float(i % 997) for i in range(20_000))


async def test_full_queue_drops_and_counts_without_blocking(db_url: str, make_result: MakeResult) -> None:
    store = await Store.open(db_url, queue_size=10)
    await store.upgrade()
    for i in range(15):
        store.submit(make_result(T0 + i))  # no writer yet: the queue fills up
    assert (store.stats.dropped, store.stats.queue_depth) == (5, 10)
    store.start_writer()
    await store.flush()
    assert (store.stats.rows_written, store.stats.dropped) == (10, 5)
    await store.close()


async def test_unstorable_results_are_dropped_not_raised(store: Store, make_result: MakeResult) -> None:
    store.submit(make_result(math.nan))
    store.submit(make_result(T0, kind="smoke-signal"))
    store.submit(make_result(T0, status=70_000))
    store.submit(make_result(T0 + 1, total_ms=math.inf))  # kept, non-finite duration -> None
    await store.flush()
    assert store.stats.dropped == 3
    [back] = await store.load_recent_results(0)
    assert back.total_ms is None


async def test_locked_database_counts_errors_stays_alive_and_recovers(
    db_url: str, backend: str, make_result: MakeResult, logs: Logs
) -> None:
    sqlite_only(backend, "another process holds SQLite's write lock")
    store = await Store.open(db_url, busy_timeout_ms=20, retry_initial_s=0.02, retry_max_s=0.05)
    await store.upgrade()
    store.start_writer()
    path = sqlite_path(db_url)
    assert path is not None
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")  # another process holds the write lock
    try:
        for i in range(100):
            store.submit(make_result(T0 + i, model="secret-model-name"))
        await _wait_for(lambda: store.stats.write_errors >= 3)
        stats = store.stats
        assert stats.healthy is False
        assert stats.last_error is not None and "locked" in stats.last_error
        assert stats.queue_depth == 100
        store.submit(make_result(T0 + 100))  # still accepted
        assert store.stats.queue_depth == 101
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    async with asyncio.timeout(5):
        await store.flush()
    stats = store.stats
    assert (stats.healthy, stats.rows_written, stats.dropped, stats.queue_depth) == (True, 101, 0, 0)
    assert len(await store.load_recent_results(0)) == 101
    await store.close()
    messages = [" ".join(str(v) for v in e.values()) for e in logs]
    assert any("retrying" in m for m in messages)
    assert any("work again" in m for m in messages)
    assert not any("secret-model-name" in m for m in messages)


async def test_full_disk_counts_errors_stays_alive_and_recovers(
    db_url: str, backend: str, make_result: MakeResult
) -> None:
    sqlite_only(backend, "a full disk is simulated with PRAGMA max_page_count")
    store = await Store.open(db_url, retry_initial_s=0.02, retry_max_s=0.05)
    await store.upgrade()
    async with store.engine.connect() as conn:
        pages = (await conn.execute(text("PRAGMA page_count"))).scalar()

    def disk_full(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA max_page_count = {pages}")
        cursor.close()

    event.listen(store.engine.sync_engine, "connect", disk_full)
    await store.engine.dispose()
    store.start_writer()
    for i in range(5000):
        store.submit(make_result(T0 + i))
    await _wait_for(lambda: store.stats.write_errors >= 2)
    assert store.stats.healthy is False
    assert "full" in (store.stats.last_error or "")
    assert store._writer._task is not None and not store._writer._task.done()

    event.remove(store.engine.sync_engine, "connect", disk_full)
    await store.engine.dispose()  # "space freed": new connections have no limit
    async with asyncio.timeout(5):
        await store.flush()
    assert (store.stats.healthy, store.stats.rows_written) == (True, 5000)
    await store.close()


async def test_close_gives_up_after_its_grace_period_when_the_database_is_locked(
    db_url: str, backend: str, make_result: MakeResult
) -> None:
    sqlite_only(backend, "another process holds SQLite's write lock")
    store = await Store.open(db_url, busy_timeout_ms=20, retry_initial_s=0.02, retry_max_s=0.05)
    await store.upgrade()
    store.start_writer()
    path = sqlite_path(db_url)
    assert path is not None
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        for i in range(10):
            store.submit(make_result(T0 + i))
        async with asyncio.timeout(5):
            await store.close(grace_s=0.3)
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert (store.stats.dropped, store.stats.queue_depth, store.stats.rows_written) == (10, 0, 0)
    store.submit(make_result(T0 + 99))  # after close: counted, not raised
    assert store.stats.dropped == 11


async def test_open_creates_the_parent_directory(tmp_path: Path, make_result: MakeResult) -> None:
    path = tmp_path / "a" / "b" / "history.db"
    store = await Store.open(f"sqlite+aiosqlite:///{path}")
    await store.upgrade()
    assert path.is_file()
    await store.close()


async def test_sqlite_connections_get_the_pragmas(store: Store, backend: str) -> None:
    sqlite_only(backend, "pragmas")
    async with store.engine.connect() as conn:
        values = [
            (await conn.execute(text(f"PRAGMA {name}"))).scalar()
            for name in ("journal_mode", "synchronous", "foreign_keys", "busy_timeout")
        ]
    assert values == ["wal", 1, 1, 5000]


async def test_a_result_written_again_after_a_restart_is_counted_dropped_not_stored_twice(
    db_url: str, make_result: MakeResult
) -> None:
    seen = []
    for _ in range(2):  # two runs of the monitor writing the same result (same key)
        s = await Store.open(db_url)
        await s.upgrade()
        s.start_writer()
        s.submit(make_result(T0))
        await s.flush()
        seen.append((s.stats.rows_written, s.stats.dropped, len(await s.load_recent_results(0))))
        await s.close()
    assert seen == [(1, 0, 1), (0, 1, 1)]
