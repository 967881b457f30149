"""The history store: one writer task for probe results, short transactions for the rest.

Failure policy: the service keeps serving from memory when the database fails. `submit` never
blocks or raises; the writer retries transient failures (locked, disk full, unwritable, connection
lost) with backoff while the bounded queue keeps accepting (and drops, counted, when full); it
logs through the "monitor.store" logger without row contents, and `stats.healthy` says whether the
last write worked. Other writes raise `StoreError` (and count in the same stats); reads raise
`StoreError` too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Final, TypeVar

from sqlalchemy import Table, exc, select
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from monitor.results import Evidence, ProbeResult
from monitor.store import queries
from monitor.store.aggregate import Agg, aggregate, merge, round_ms
from monitor.store.codes import (
    KIND_BY_CODE,
    KIND_CODES,
    MEMBERSHIP_EVENTS,
    OUTCOME_BY_CODE,
    OUTCOME_CODES,
)
from monitor.store.engine import (
    DEFAULT_BUSY_TIMEOUT_MS,
    create_engine,
    read_transaction,
    sqlite_path,
    write_transaction,
)
from monitor.store.migrate import upgrade_with_engine
from monitor.store.schema import (
    DISCOVERY_ERROR_MAX,
    best_hosts,
    discovery_runs,
    hosts,
    membership_events,
    models,
    probe_results,
    rollups_hourly,
)
from monitor.store.types import DiscoveryRecord, HistoryPoint, MembershipEvent, StoreStats

log = logging.getLogger("monitor.store")

T = TypeVar("T")

HOUR: Final = 3600
DAY: Final = 86400
# Hours are rolled up only once they ended this long ago, so that probes still running (or still
# queued for the writer) at the hour's end are counted.
ROLLUP_GRACE_S: Final = 120.0
# At most this many hours are read and written per roll-up transaction (a first roll-up over days
# of raw results proceeds in steps; the aggregation itself runs in a worker thread).
ROLLUP_CHUNK_HOURS: Final = 6
# Retention deletes this many (model, host) pairs per transaction, so the writer never waits long.
RETENTION_PAIRS_PER_TX: Final = 100
_NAME_CHUNK: Final = 500

# Database failures worth retrying: everything the driver reports except bad data.
_PERMANENT_DB_ERRORS: Final = (exc.IntegrityError, exc.DataError)


class StoreError(Exception):
    """A database operation failed. The message names the operation and the driver's error only."""


def _ms(t: float) -> int:
    return round(t * 1000)


def _finite_or_none(value: float | None) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return round_ms(value)


def describe(error: BaseException) -> str:
    """A short description of a failure, without SQL parameters or row contents."""
    if isinstance(error, exc.DBAPIError) and error.orig is not None:
        text = f"{type(error.orig).__name__}: {error.orig}"
    elif isinstance(error, exc.SQLAlchemyError):
        text = type(error).__name__
    elif isinstance(error, OSError):
        text = f"{type(error).__name__}: {error.strerror or error}"
    else:
        text = type(error).__name__
    return text[:300]


def _is_transient(error: Exception) -> bool:
    if isinstance(error, _PERMANENT_DB_ERRORS):
        return False
    return isinstance(error, (exc.DBAPIError, exc.TimeoutError, exc.DisconnectionError, OSError))


class Store:
    """History of probe results, discovery runs, membership and best hosts (see module doc)."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        queue_size: int = 100_000,
        batch_size: int = 2000,
        flush_interval_s: float = 1.0,
        retry_initial_s: float = 1.0,
        retry_max_s: float = 30.0,
    ) -> None:
        self._engine = engine
        self._dialect = engine.dialect.name
        self._queue: asyncio.Queue[ProbeResult] = asyncio.Queue(maxsize=queue_size)
        self._batch_size = batch_size
        self._flush_interval_s = flush_interval_s
        self._retry_initial_s = retry_initial_s
        self._retry_max_s = retry_max_s
        self._model_ids: dict[str, int] = {}
        self._host_ids: dict[str, int] = {}
        # Newest `at` written per (model_id, host_id, kind): two probes that start in the same
        # millisecond get distinct keys (the second one moves 1 ms later).
        self._last_at: dict[tuple[int, int, int], int] = {}
        self._writer: asyncio.Task[None] | None = None
        self._inflight: list[ProbeResult] = []
        self._submitted = 0
        self._completed = 0
        self._flush_waiters = 0
        self._progress = asyncio.Condition()
        self._closing = False
        self._closed = False
        self._rows_written = 0
        self._write_errors = 0
        self._dropped = 0
        self._healthy = True
        self._last_error: str | None = None
        self._ins_results = queries.insert_ignore(self._dialect, probe_results)

    # -- life cycle -------------------------------------------------------------------------

    @classmethod
    async def open(
        cls,
        database_url: str,
        *,
        busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS,
        queue_size: int = 100_000,
        batch_size: int = 2000,
        flush_interval_s: float = 1.0,
        retry_initial_s: float = 1.0,
        retry_max_s: float = 30.0,
    ) -> Store:
        """Make the engine (SQLite: pragmas on connect; the file's directory is created). Touches
        no table: call `upgrade()` to apply migrations."""
        path = sqlite_path(database_url)
        if path is not None:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as error:
                # The caller reports it once, as the one line a user reads (see monitor/server.py).
                raise StoreError(f"cannot create the directory {path.parent}: {describe(error)}") from None
        engine = create_engine(database_url, busy_timeout_ms=busy_timeout_ms)
        return cls(
            engine,
            queue_size=queue_size,
            batch_size=batch_size,
            flush_interval_s=flush_interval_s,
            retry_initial_s=retry_initial_s,
            retry_max_s=retry_max_s,
        )

    @property
    def engine(self) -> AsyncEngine:
        return self._engine

    async def upgrade(self) -> None:
        """Apply pending migrations (alembic upgrade head) inside the running loop."""
        try:
            await upgrade_with_engine(self._engine)
        except Exception as error:
            raise StoreError(f"database upgrade failed: {describe(error)}") from error

    def start_writer(self) -> None:
        """Start the writer task (idempotent); call from the running loop."""
        if self._writer is None or self._writer.done():
            self._writer = asyncio.get_running_loop().create_task(
                self._run_writer(), name="monitor.store.writer"
            )

    async def close(self, grace_s: float = 10.0) -> None:
        """Write what is queued (waiting at most `grace_s`), stop the writer, dispose the engine.
        Results still queued after that are counted as dropped. Idempotent."""
        if self._closed:
            return
        self._closing = True
        if self._writer is None and self._queue.qsize():
            self.start_writer()
        if self._writer is not None:
            try:
                async with asyncio.timeout(grace_s):
                    await self.flush()
            except (TimeoutError, RuntimeError):
                log.warning("closing with %d probe results not written", self._depth())
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer
            lost = self._depth()
            if lost:
                self._dropped += lost
                self._inflight = []
                while not self._queue.empty():
                    self._queue.get_nowait()
        self._closed = True
        await self._engine.dispose()

    # -- probe results: queue and writer ----------------------------------------------------

    def submit(self, result: ProbeResult) -> None:
        """Queue a probe result for writing (call from the event loop's thread). Never blocks,
        never raises; drops (counted) when the queue is full, the store is closing, or the result
        cannot be stored (unknown kind or outcome, non-finite time, impossible HTTP status)."""
        try:
            if self._closing or self._closed:
                self._dropped += 1
                return
            if (
                result.kind not in KIND_CODES
                or result.outcome not in OUTCOME_CODES
                or not math.isfinite(result.started_at)
                or (result.status is not None and not 0 <= result.status <= 999)
            ):
                self._dropped += 1
                return
            self._queue.put_nowait(result)
            self._submitted += 1
        except asyncio.QueueFull:
            self._dropped += 1
        except Exception:
            self._dropped += 1

    async def flush(self) -> None:
        """Wait until everything submitted so far has been written (or given up as rejected by the
        database). While the database fails this waits: bound it with `asyncio.timeout()`.
        Raises RuntimeError if no writer runs."""
        target = self._submitted
        if self._completed >= target:
            return
        writer = self._writer
        if writer is None or writer.done():
            raise RuntimeError("the store's writer is not running (call start_writer())")
        self._flush_waiters += 1
        try:
            async with self._progress:
                await self._progress.wait_for(lambda: self._completed >= target or writer.done())
        finally:
            self._flush_waiters -= 1
        if self._completed < target:
            raise RuntimeError("the store's writer stopped")

    @property
    def stats(self) -> StoreStats:
        return StoreStats(
            rows_written=self._rows_written,
            write_errors=self._write_errors,
            dropped=self._dropped,
            queue_depth=self._depth(),
            healthy=self._healthy,
            last_error=self._last_error,
        )

    def _depth(self) -> int:
        return self._queue.qsize() + len(self._inflight)

    async def _run_writer(self) -> None:
        try:
            while True:
                batch = await self._next_batch()
                try:
                    await self._write_with_retry(batch)
                except asyncio.CancelledError:
                    self._dropped += len(batch)  # closing while the database fails
                    raise
                finally:
                    self._completed += len(batch)
                    self._inflight = []
                    async with self._progress:
                        self._progress.notify_all()
        finally:
            async with self._progress:
                self._progress.notify_all()

    async def _next_batch(self) -> list[ProbeResult]:
        """Up to `batch_size` results: the first one, then whatever arrives within the flush
        interval (less when a flush is awaited or the store is closing)."""
        first = await self._queue.get()
        batch = [first]
        self._inflight = batch
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._flush_interval_s
        while True:
            while len(batch) < self._batch_size:
                try:
                    batch.append(self._queue.get_nowait())
                except asyncio.QueueEmpty:
                    break
            if len(batch) >= self._batch_size or self._flush_waiters or self._closing:
                return batch
            remaining = deadline - loop.time()
            if remaining <= 0:
                return batch
            await asyncio.sleep(min(remaining, 0.05))

    async def _write_with_retry(self, batch: list[ProbeResult]) -> None:
        delay = self._retry_initial_s
        while True:
            try:
                written = await self._write_results(batch)
            except Exception as error:
                self._record_failure(error)
                if not _is_transient(error):
                    self._dropped += len(batch)
                    log.error(
                        "dropped %d probe results the database rejected: %s",
                        len(batch),
                        describe(error),
                    )
                    return
                log.warning(
                    "writing %d probe results failed (%s); retrying in %.1f s, %d queued",
                    len(batch),
                    describe(error),
                    delay,
                    self._depth(),
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._retry_max_s)
                continue
            self._record_success()
            self._rows_written += written
            self._dropped += len(batch) - written
            return

    async def _write_results(self, batch: Sequence[ProbeResult]) -> int:
        async with write_transaction(self._engine) as conn:
            new_models, new_hosts = await self._ensure_ids(
                conn, {r.model for r in batch}, {r.host for r in batch}
            )
            model_ids = self._model_ids | new_models if new_models else self._model_ids
            host_ids = self._host_ids | new_hosts if new_hosts else self._host_ids
            last_at: dict[tuple[int, int, int], int] = {}
            rows: list[dict[str, Any]] = []
            for r in batch:
                mid = model_ids[r.model]
                hid = host_ids[r.host]
                kind = KIND_CODES[r.kind]
                at = _ms(r.started_at)
                key = (mid, hid, kind)
                prev = last_at.get(key, self._last_at.get(key))
                if prev is not None:
                    if at == prev:
                        at = prev + 1
                    last_at[key] = max(prev, at)
                else:
                    last_at[key] = at
                rows.append(
                    {
                        "model_id": mid,
                        "host_id": hid,
                        "at": at,
                        "kind": kind,
                        "outcome": OUTCOME_CODES[r.outcome],
                        "status": r.status,
                        "connect_ms": _finite_or_none(r.connect_ms),
                        "ttft_ms": _finite_or_none(r.ttft_ms),
                        "total_ms": _finite_or_none(r.total_ms),
                    }
                )
            result = await conn.execute(self._ins_results, rows)
            written = result.rowcount if result.rowcount is not None and result.rowcount >= 0 else len(rows)
        self._model_ids.update(new_models)
        self._host_ids.update(new_hosts)
        self._last_at.update(last_at)
        return written

    # -- ids ----------------------------------------------------------------------------------

    async def _ensure_ids(
        self, conn: AsyncConnection, model_names: Iterable[str], host_urls: Iterable[str]
    ) -> tuple[dict[str, int], dict[str, int]]:
        """Ids of names not cached yet, creating rows as needed, in the caller's transaction.
        The caller merges them into the caches once the transaction has committed."""
        new_models = await self._ensure(conn, models, "name", model_names, self._model_ids)
        new_hosts = await self._ensure(conn, hosts, "url", host_urls, self._host_ids)
        return new_models, new_hosts

    async def _ensure(
        self,
        conn: AsyncConnection,
        table: Table,
        column: str,
        names: Iterable[str],
        cache: dict[str, int],
    ) -> dict[str, int]:
        missing = sorted({n for n in names if n not in cache})
        found: dict[str, int] = {}
        col = table.c[column]
        for i in range(0, len(missing), _NAME_CHUNK):
            chunk = missing[i : i + _NAME_CHUNK]
            await conn.execute(queries.insert_ignore(self._dialect, table), [{column: n} for n in chunk])
            rows = await conn.execute(select(table.c.id, col).where(col.in_(chunk)))
            found.update({name: int(id_) for id_, name in rows})
        return found

    def _commit_ids(self, new: tuple[dict[str, int], dict[str, int]]) -> None:
        self._model_ids.update(new[0])
        self._host_ids.update(new[1])

    # -- health bookkeeping ----------------------------------------------------------------

    def _record_failure(self, error: BaseException) -> None:
        self._write_errors += 1
        self._healthy = False
        self._last_error = describe(error)

    def _record_success(self) -> None:
        if not self._healthy:
            log.info("database writes work again")
        self._healthy = True

    def _write_failed(self, error: Exception, what: str) -> StoreError:
        self._record_failure(error)
        log.warning("%s failed: %s", what, describe(error))
        return StoreError(f"{what} failed: {describe(error)}")

    async def _read(self, what: str, fn: Callable[[Connection], T]) -> T:
        try:
            async with read_transaction(self._engine) as conn:
                return await conn.run_sync(fn)
        except Exception as error:
            log.warning("%s failed: %s", what, describe(error))
            raise StoreError(f"{what} failed: {describe(error)}") from error

    # -- short writes -----------------------------------------------------------------------

    async def record_discovery(self, record: DiscoveryRecord) -> None:
        error = None if record.error is None else record.error[:DISCOVERY_ERROR_MAX]
        try:
            async with write_transaction(self._engine) as conn:
                await conn.execute(
                    discovery_runs.insert().values(
                        at=_ms(record.at),
                        ok=record.ok,
                        duration_s=record.duration_s,
                        models=record.models,
                        hosts=record.hosts,
                        error=error,
                    )
                )
        except Exception as exc_:
            raise self._write_failed(exc_, "recording a discovery run") from exc_
        self._record_success()

    async def record_membership(self, events: Sequence[MembershipEvent]) -> None:
        if not events:
            return
        for ev in events:
            if ev.event not in MEMBERSHIP_EVENTS:
                raise ValueError(f"unknown membership event: {ev.event!r}")
        try:
            async with write_transaction(self._engine) as conn:
                new = await self._ensure_ids(conn, {e.model for e in events}, {e.host for e in events})
                model_ids = self._model_ids | new[0]
                host_ids = self._host_ids | new[1]
                await conn.execute(
                    membership_events.insert(),
                    [
                        {
                            "at": _ms(e.at),
                            "model_id": model_ids[e.model],
                            "host_id": host_ids[e.host],
                            "event": e.event,
                        }
                        for e in events
                    ],
                )
        except Exception as exc_:
            raise self._write_failed(exc_, "recording membership events") from exc_
        self._commit_ids(new)
        self._record_success()

    async def save_best(self, model: str, host: str | None, at: float) -> None:
        """Upsert a model's current best host (None: no host is up). `since` moves only when the
        host changes."""
        try:
            async with write_transaction(self._engine) as conn:
                new = await self._ensure_ids(conn, {model}, set() if host is None else {host})
                model_id = (self._model_ids | new[0])[model]
                host_id = None if host is None else (self._host_ids | new[1])[host]
                ins = queries.dialect_insert(self._dialect, best_hosts).values(
                    model_id=model_id, host_id=host_id, since=_ms(at)
                )
                ins = ins.on_conflict_do_update(
                    index_elements=[best_hosts.c.model_id],
                    set_={"host_id": ins.excluded.host_id, "since": ins.excluded.since},
                    where=best_hosts.c.host_id.is_distinct_from(ins.excluded.host_id),
                )
                await conn.execute(ins)
        except Exception as exc_:
            raise self._write_failed(exc_, "saving the best host") from exc_
        self._commit_ids(new)
        self._record_success()

    # -- reads ------------------------------------------------------------------------------

    @staticmethod
    def _names(conn: Connection) -> tuple[dict[int, str], dict[int, str]]:
        model_names = {int(i): n for i, n in conn.execute(select(models.c.id, models.c.name))}
        host_urls = {int(i): u for i, u in conn.execute(select(hosts.c.id, hosts.c.url))}
        return model_names, host_urls

    async def load_best(self) -> dict[str, str | None]:
        def run(conn: Connection) -> dict[str, str | None]:
            stmt = (
                select(models.c.name, hosts.c.url)
                .select_from(best_hosts)
                .join(models, models.c.id == best_hosts.c.model_id)
                .outerjoin(hosts, hosts.c.id == best_hosts.c.host_id)
            )
            return {name: url for name, url in conn.execute(stmt)}

        return await self._read("loading best hosts", run)

    async def load_members(self) -> dict[str, set[str]]:
        """model -> hosts whose latest membership event is "joined" (models with none left out)."""

        def run(conn: Connection) -> dict[str, set[str]]:
            e = membership_events.c
            stmt = (
                select(models.c.name, hosts.c.url, e.event)
                .select_from(membership_events)
                .join(models, models.c.id == e.model_id)
                .join(hosts, hosts.c.id == e.host_id)
                .order_by(e.at, e.id)
            )
            latest: dict[tuple[str, str], str] = {}
            for model, host, event in conn.execute(stmt):
                latest[(model, host)] = event
            members: dict[str, set[str]] = defaultdict(set)
            for (model, host), event in latest.items():
                if event == "joined":
                    members[model].add(host)
            return dict(members)

        return await self._read("loading members", run)

    async def load_recent_results(self, since: float, per_host_limit: int = 200) -> list[ProbeResult]:
        """Results at or after `since`, at most `per_host_limit` (the newest) per model, host and
        probe kind, oldest first. `detail` is not stored and comes back empty; durations come back
        at whole-millisecond resolution, times at millisecond resolution."""
        since_ms = _ms(since)

        def run(conn: Connection) -> tuple[list[tuple[Any, ...]], dict[int, str], dict[int, str]]:
            rows = queries.recent_results(conn, since_ms, per_host_limit, KIND_BY_CODE.keys())
            model_names, host_urls = self._names(conn)
            return rows, model_names, host_urls

        rows, model_names, host_urls = await self._read("loading recent results", run)
        kinds = dict(KIND_BY_CODE)
        outcomes = dict(OUTCOME_BY_CODE)
        out: list[ProbeResult] = []
        append = out.append
        for m, h, at, k, o, status, c, tt, tot in rows:
            kind = kinds.get(k)
            outcome = outcomes.get(o)
            if kind is None or outcome is None:  # written by a newer version: skip, don't guess
                continue
            append(ProbeResult(model_names[m], host_urls[h], kind, outcome, at / 1000, status, c, tt, tot))
        return out

    async def load_recent_evidence(
        self, since: float, per_host_limit: int = 200
    ) -> list[tuple[tuple[str, str], Evidence]]:
        """The results of `load_recent_results`, in the same order, as ((model, host), evidence):
        only what the health state machine reads, without a `ProbeResult` per row (a restart reads
        one per kind and window slot of every host: 150,000 at 1,000 hosts)."""
        since_ms = _ms(since)

        def run(conn: Connection) -> tuple[list[queries.EvidenceRow], dict[int, str], dict[int, str]]:
            rows = queries.recent_evidence(conn, since_ms, per_host_limit, KIND_BY_CODE.keys())
            model_names, host_urls = self._names(conn)
            return rows, model_names, host_urls

        rows, model_names, host_urls = await self._read("loading recent results", run)
        kinds = dict(KIND_BY_CODE)
        outcomes = dict(OUTCOME_BY_CODE)
        keys: dict[tuple[int, int], tuple[str, str]] = {}
        out: list[tuple[tuple[str, str], Evidence]] = []
        append = out.append
        for m, h, at, k, o, tt, tot in rows:
            kind = kinds.get(k)
            outcome = outcomes.get(o)
            if kind is None or outcome is None:  # written by a newer version: skip, don't guess
                continue
            key = keys.get((m, h))
            if key is None:
                key = keys[(m, h)] = (model_names[m], host_urls[h])
            append((key, (at / 1000, kind, outcome, tt, tot)))
        return out

    # -- roll-up and retention --------------------------------------------------------------

    async def rollup(self, now: float) -> int:
        """Aggregate every complete hour (ended at least ROLLUP_GRACE_S ago) not rolled up yet into
        one row per (hour, model, host). Idempotent: an hour is rolled up once, and rolling it up
        again (upsert) gives the same row. Returns the number of rows written."""
        end_hour = int((now - ROLLUP_GRACE_S) // HOUR) * HOUR

        def start(conn: Connection) -> int | None:
            mark = queries.rolled_until(conn)
            if mark is not None:
                return mark
            earliest = queries.earliest_raw_ms(conn)
            return None if earliest is None else (earliest // 1000) // HOUR * HOUR

        begin = await self._read("reading the roll-up mark", start)
        if begin is None or begin >= end_hour:
            return 0
        written = 0
        while begin < end_hour:
            chunk_end = min(begin + ROLLUP_CHUNK_HOURS * HOUR, end_hour)
            lo, hi = begin, chunk_end

            def read_chunk(
                conn: Connection, lo: int = lo, hi: int = hi
            ) -> dict[queries.Pair, list[queries.RawRow]]:
                return queries.raw_for_rollup(conn, lo * 1000, hi * 1000)

            raw = await self._read("reading probe results for roll-up", read_chunk)
            rows = await asyncio.to_thread(_rollup_rows, raw)
            try:
                async with write_transaction(self._engine) as conn:
                    await conn.run_sync(queries.write_rollups, rows, hi)
            except Exception as error:
                raise self._write_failed(error, "writing roll-ups") from error
            self._record_success()
            written += len(rows)
            begin = chunk_end
        return written

    async def apply_retention(self, now: float, raw_days: float = 7, rollup_days: float = 400) -> int:
        """Delete raw results older than `raw_days` (only those already rolled up), roll-ups and
        discovery runs older than `rollup_days`. Returns the number of rows deleted. Membership
        events and best hosts are kept (they are few)."""
        raw_cut_ms = _ms(now - raw_days * DAY)
        rollup_cut_hour = int((now - rollup_days * DAY) // HOUR) * HOUR

        def plan(conn: Connection) -> tuple[int | None, list[queries.Pair], list[queries.Pair]]:
            return (
                queries.rolled_until(conn),
                queries.distinct_pairs(conn, probe_results),
                queries.distinct_pairs(conn, rollups_hourly),
            )

        mark, raw_pairs, rollup_pairs = await self._read("planning retention", plan)
        if mark is None:
            raw_pairs = []  # nothing rolled up yet: keep all raw rows
        else:
            raw_cut_ms = min(raw_cut_ms, mark * 1000)
        deleted = 0
        try:
            for i in range(0, len(raw_pairs), RETENTION_PAIRS_PER_TX):
                chunk = raw_pairs[i : i + RETENTION_PAIRS_PER_TX]
                async with write_transaction(self._engine) as conn:
                    deleted += await conn.run_sync(queries.delete_raw_before, chunk, raw_cut_ms)
            for i in range(0, len(rollup_pairs), RETENTION_PAIRS_PER_TX):
                chunk = rollup_pairs[i : i + RETENTION_PAIRS_PER_TX]
                async with write_transaction(self._engine) as conn:
                    deleted += await conn.run_sync(queries.delete_rollups_before, chunk, rollup_cut_hour)
            async with write_transaction(self._engine) as conn:
                deleted += await conn.run_sync(queries.delete_discovery_before, rollup_cut_hour * 1000)
        except Exception as error:
            raise self._write_failed(error, "applying retention") from error
        self._record_success()
        return deleted

    # -- history ----------------------------------------------------------------------------

    async def history(
        self, model: str, host: str | None, since: float, until: float, step_s: int
    ) -> list[HistoryPoint]:
        """Buckets of `step_s` seconds (aligned on multiples of step_s since the epoch) in
        [since, until), one point per host with data, sorted by time then host.

        Hours already rolled up come from `rollups_hourly` when step_s >= 3600; the rest (the
        current partial hour, or everything raw when step_s < 3600) from raw results. Where raw
        results are gone, roll-ups fill in (at hourly resolution)."""
        if step_s <= 0:
            raise ValueError("step_s must be positive")
        since_ms, until_ms = _ms(since), _ms(until)
        since_hour = int(since // HOUR) * HOUR
        until_hour = math.ceil(until / HOUR) * HOUR

        def run(conn: Connection) -> dict[str, tuple[list[queries.RawRow], list[queries.RollupRow]]]:
            model_id = conn.execute(select(models.c.id).where(models.c.name == model)).scalar()
            if model_id is None:
                return {}
            if host is None:
                host_ids = sorted(
                    {h for _, h in queries.distinct_pairs(conn, probe_results, model_id)}
                    | {h for _, h in queries.distinct_pairs(conn, rollups_hourly, model_id)}
                )
            else:
                hid = conn.execute(select(hosts.c.id).where(hosts.c.url == host)).scalar()
                host_ids = [] if hid is None else [hid]
            mark = queries.rolled_until(conn)
            _, host_urls = self._names(conn)
            out: dict[str, tuple[list[queries.RawRow], list[queries.RollupRow]]] = {}
            for hid in host_ids:
                rolled_end = min(mark, until_hour) if mark is not None else since_hour
                if step_s >= HOUR:
                    raw_from = max(since_ms, rolled_end * 1000)
                    raw = queries.raw_rows(conn, model_id, hid, raw_from, until_ms)
                else:
                    raw = queries.raw_rows(conn, model_id, hid, since_ms, until_ms)
                    if raw:
                        first_raw_hour = (raw[0][0] // 1000) // HOUR * HOUR
                        rolled_end = min(rolled_end, first_raw_hour)
                rolled = (
                    queries.rollup_rows(conn, model_id, hid, since_hour, rolled_end)
                    if rolled_end > since_hour
                    else []
                )
                if raw or rolled:
                    out[host_urls[hid]] = (raw, rolled)
            return out

        data = await self._read("reading history", run)
        return await asyncio.to_thread(_history_points, data, step_s)


def _rollup_rows(raw: dict[queries.Pair, list[queries.RawRow]]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for (model_id, host_id), results in raw.items():
        by_hour: dict[int, list[tuple[int, int, float | None, float | None]]] = defaultdict(list)
        for at, kind, outcome, ttft, total in results:
            by_hour[(at // 1000) // HOUR * HOUR].append((kind, outcome, ttft, total))
        for hour, hour_rows in sorted(by_hour.items()):
            agg = aggregate(hour_rows)
            if agg is None:
                continue
            rows.append(
                {
                    "model_id": model_id,
                    "host_id": host_id,
                    "hour": hour,
                    "probes": agg.probes,
                    "ok": agg.ok,
                    "ttft_ms_p50": round_ms(agg.ttft_ms_p50),
                    "ttft_ms_p95": round_ms(agg.ttft_ms_p95),
                    "latency_ms_p50": round_ms(agg.latency_ms_p50),
                }
            )
    return rows


def _history_points(
    data: dict[str, tuple[list[queries.RawRow], list[queries.RollupRow]]], step_s: int
) -> list[HistoryPoint]:
    """Bucket raw rows and hourly roll-ups of each host into points (pure; run in a thread)."""
    points: list[HistoryPoint] = []
    for url, (raw, rolled) in data.items():
        raw_by_bucket: dict[int, list[tuple[int, int, float | None, float | None]]] = defaultdict(list)
        for at, kind, outcome, ttft, total in raw:
            raw_by_bucket[(at // 1000) // step_s * step_s].append((kind, outcome, ttft, total))
        parts: dict[int, list[Agg]] = defaultdict(list)
        for hour, probes, ok, t50, t95, l50 in rolled:
            parts[hour // step_s * step_s].append(Agg(probes, ok, t50, t95, l50))
        for bucket, rows in raw_by_bucket.items():
            agg = aggregate(rows)
            if agg is not None:
                parts[bucket].append(agg)
        for bucket, aggs in parts.items():
            agg = merge(aggs)
            points.append(
                HistoryPoint(
                    at=float(bucket),
                    host=url,
                    probes=agg.probes,
                    ok=agg.ok,
                    availability=agg.availability,
                    ttft_ms_p50=agg.ttft_ms_p50,
                    ttft_ms_p95=agg.ttft_ms_p95,
                    latency_ms_p50=agg.latency_ms_p50,
                )
            )
    points.sort(key=lambda p: (p.at, p.host))
    return points
