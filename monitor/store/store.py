"""The history store's facade: one object the service holds, wiring the parts that do the work.

- `writer`: probe results through a bounded queue and one batching writer task;
- `records`: short writes (discovery runs, membership, best hosts);
- `restore`: what a restart reads back; `history`: buckets for `/v1/history`;
- `maintenance`: hourly roll-ups and retention.

Vantages: a store belongs to one vantage (the monitor's location or name, `default` unless told)
and tags every write with it; every read is of its own vantage unless given another's name.

Failure policy: the service keeps serving from memory when the database fails. `submit` never
blocks or raises; every result is written or counted as dropped with its reason (`stats`); the
writer retries while the database fails (nothing is dropped for a fault that clears) and logs
through the "monitor.store" logger without row contents; `stats.healthy` says whether the batches
of results are being written. Other writes and every read raise `StoreError`, whose message says
what failed and why.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncEngine

from monitor.core.certs import HostCert
from monitor.core.clock import SYSTEM_CLOCK, Clock
from monitor.core.host_facts import StoredFact
from monitor.core.keys import HostKey
from monitor.core.maintenance import Window
from monitor.core.membership import MembershipChange
from monitor.core.results import Evidence, ProbeResult
from monitor.core.slo import DEFAULT_TTFT_MS, WINDOW_DAYS, WindowCounts
from monitor.store import (
    budget,
    certs,
    facts,
    incidents,
    maintenance,
    notifications,
    queries,
    records,
    restore,
    windows,
)
from monitor.store.core import Core, check_vantage, describe
from monitor.store.engine import DEFAULT_BUSY_TIMEOUT_MS, create_engine, sqlite_path
from monitor.store.errors import StoreError
from monitor.store.facts import FACT_DROP_REASONS, FactRows, FactWriter
from monitor.store.history import HistoryReads
from monitor.store.incidents import StoredIncident
from monitor.store.migrate import upgrade_with_engine
from monitor.store.notifications import StoredMessage
from monitor.store.schema import DEFAULT_VANTAGE
from monitor.store.types import DiscoveryRecord, StoreStats, VantageInfo
from monitor.store.writer import DROP_REASONS, SHUTDOWN, ResultWriter

__all__ = ["Store", "StoreError"]

# How long a result waits in memory for its batch, at most, while the database works: what a
# crash (SIGKILL, power) can lose, with the write of the batches ahead of it.
FLUSH_INTERVAL_S = 0.25
# The longest wait between two tries of a failing write: how long results stay in memory after a
# fault clears, at most.
RETRY_MAX_S = 5.0


class Store(HistoryReads):
    """History of probe results, discovery runs, membership and best hosts (see module doc)."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        vantage: str = DEFAULT_VANTAGE,
        queue_size: int = 100_000,
        batch_size: int = 2000,
        flush_interval_s: float = FLUSH_INTERVAL_S,
        retry_initial_s: float = 1.0,
        retry_max_s: float = RETRY_MAX_S,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self._core = Core(engine, vantage)
        self._writer = ResultWriter(
            self._core,
            queue_size=queue_size,
            batch_size=batch_size,
            flush_interval_s=flush_interval_s,
            retry_initial_s=retry_initial_s,
            retry_max_s=retry_max_s,
            clock=clock,
        )
        self._facts = FactWriter(
            self._core,
            flush_interval_s=flush_interval_s,
            retry_initial_s=retry_initial_s,
            retry_max_s=retry_max_s,
            clock=clock,
        )
        self._closed = False

    # -- life cycle -------------------------------------------------------------------------

    @classmethod
    async def open(
        cls,
        database_url: str,
        *,
        vantage: str = DEFAULT_VANTAGE,
        busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS,
        queue_size: int = 100_000,
        batch_size: int = 2000,
        flush_interval_s: float = FLUSH_INTERVAL_S,
        retry_initial_s: float = 1.0,
        retry_max_s: float = RETRY_MAX_S,
        clock: Clock = SYSTEM_CLOCK,
    ) -> Store:
        """Make the engine (SQLite: pragmas on connect; the file's directory is created). Touches
        no table: call `upgrade()` to apply migrations."""
        check_vantage(vantage)
        engine = create_engine(database_url, busy_timeout_ms=busy_timeout_ms)  # checks the URL first
        path = sqlite_path(database_url)
        if path is not None:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as error:
                await engine.dispose()
                # The caller reports it once, as the one line a user reads (see monitor/server.py).
                raise StoreError(f"cannot create the directory {path.parent}: {describe(error)}") from None
        return cls(
            engine,
            vantage=vantage,
            queue_size=queue_size,
            batch_size=batch_size,
            flush_interval_s=flush_interval_s,
            retry_initial_s=retry_initial_s,
            retry_max_s=retry_max_s,
            clock=clock,
        )

    @property
    def engine(self) -> AsyncEngine:
        return self._core.engine

    @property
    def vantage(self) -> str:
        """The vantage this store writes as and reads by default."""
        return self._core.vantage

    async def upgrade(self) -> None:
        """Apply pending migrations (alembic upgrade head) inside the running loop."""
        try:
            await upgrade_with_engine(self._core.engine)
        except StoreError:
            raise
        except Exception as error:
            raise StoreError(f"database upgrade failed: {describe(error)}") from error

    def start_writer(self) -> None:
        """Start the writer task (idempotent); call from the running loop."""
        self._writer.start()

    async def close(self, grace_s: float = 10.0) -> None:
        """Write what is queued (waiting at most `grace_s`), stop the writer, dispose the engine.
        Results still queued after that are counted as dropped. Idempotent."""
        if self._closed:
            return
        await self._writer.close(grace_s)
        await self._facts.close(grace_s)
        self._closed = True
        await self._core.engine.dispose()

    # -- probe results ----------------------------------------------------------------------

    def submit(self, result: ProbeResult) -> None:
        """Queue a probe result for writing (call from the event loop's thread). Never blocks,
        never raises; drops (counted) when the queue is full, the store is closing, or the result
        cannot be stored (unknown kind or outcome, non-finite time, impossible HTTP status)."""
        if self._closed:
            self._writer.drop(SHUTDOWN)
            return
        self._writer.submit(result)

    async def flush(self) -> None:
        """Wait until everything submitted so far has been written (or given up as rejected by the
        database). While the database fails this waits: bound it with `asyncio.timeout()`.
        Raises RuntimeError if no writer runs."""
        await self._writer.flush()

    # -- host facts (identity fingerprints, paths, throughput: the latest of each member) --------

    def submit_fact(self, fact: StoredFact) -> None:
        """Queue a host fact for writing, the latest of its (model, host, kind) winning. Never blocks,
        never raises; retried while the database fails (see `facts.FactWriter`)."""
        if self._closed:
            self._facts.dropped_by[SHUTDOWN] += 1
            return
        self._facts.submit(fact)

    async def flush_facts(self) -> None:
        """Write the pending host facts now (StoreError-free: the database's error is raised)."""
        await self._facts.flush()

    async def load_facts(self, vantage: str | None = None) -> FactRows:
        """A vantage's latest host facts (unreadable rows skipped and counted in `skipped`)."""
        return await facts.load_facts(self._core, vantage)

    @property
    def facts_dropped_by(self) -> dict[str, int]:
        """Host facts not written, by reason (`unstorable`, `rejected`, `shutdown`)."""
        return {reason: self._facts.dropped_by[reason] for reason in FACT_DROP_REASONS}

    @property
    def stats(self) -> StoreStats:
        return StoreStats(
            rows_written=self._writer.rows_written,
            write_errors=self._core.write_errors,
            dropped=self._writer.dropped,
            queue_depth=self._writer.depth,
            healthy=self._core.healthy,
            last_error=self._core.last_error,
            dropped_by_reason={reason: self._writer.dropped_by[reason] for reason in DROP_REASONS},
            facts_dropped_by_reason=self.facts_dropped_by,
        )

    # -- short writes -----------------------------------------------------------------------

    async def record_discovery(self, record: DiscoveryRecord) -> None:
        await records.record_discovery(self._core, record)

    async def record_membership(self, events: Sequence[MembershipChange]) -> None:
        await records.record_membership(self._core, events)

    async def save_best(self, model: str, host: str | None, at: float) -> None:
        """Upsert a model's current best host (None: no host is up). `since` moves only when the
        host changes."""
        await records.save_best(self._core, model, host, at)

    async def record_incidents(self, items: Sequence[StoredIncident]) -> None:
        """Store the status page's incidents (one transaction; StoreError: none was stored)."""
        await incidents.record_incidents(self._core, items)

    async def load_incidents(self, since: float, vantage: str | None = None) -> list[StoredIncident]:
        """The stored incidents at or after `since`, oldest first."""
        return await incidents.load_incidents(self._core, since, vantage)

    # -- maintenance windows (shared by every vantage) ------------------------------------------

    async def add_window(
        self, host: str | None, model: str | None, starts_at: float, ends_at: float, reason: str
    ) -> int:
        """Store a maintenance window; returns its id (ValueError: see `windows.add_window`)."""
        return await windows.add_window(self._core, host, model, starts_at, ends_at, reason)

    async def end_window(self, window_id: int, at: float) -> Window | None:
        """End a maintenance window at `at`; None when there is no such window."""
        return await windows.end_window(self._core, window_id, at)

    async def load_windows(self, since: float | None = None) -> list[Window]:
        """Every maintenance window, or those not over at `since`, by start time."""
        return await windows.load_windows(self._core, since)

    # -- host certificates (shared by every vantage) ---------------------------------------------

    async def save_certs(self, records: Sequence[HostCert]) -> None:
        """Store the certificates hosts showed (a stored pin is never replaced: see `certs`)."""
        await certs.save_certs(self._core, records)

    async def load_certs(self) -> list[HostCert]:
        """Every host's last certificate and pin, by host."""
        return await certs.load_certs(self._core)

    async def accept_cert(self, host: str) -> HostCert | None:
        """Pin the certificate `host` showed last; None when none is stored for it."""
        return await certs.accept_cert(self._core, host)

    # -- notifications (sent once, whichever replica leads) ----------------------------------

    async def claim_notification(self, message: StoredMessage, at: float) -> bool:
        """Record a message pending; False when it was recorded already (see `notifications.claim`)."""
        return await notifications.claim(self._core, message, at)

    async def mark_notification(self, event: str, channel: str, state: str, attempts: int, at: float) -> None:
        await notifications.mark(self._core, event, channel, state, attempts, at)

    async def pending_notifications(self, channel: str, at: float = 0.0) -> list[StoredMessage]:
        """What is still to be sent (see `notifications.load_pending`; `at`: now, for the marks)."""
        return await notifications.load_pending(self._core, channel, at)

    # -- restore reads ----------------------------------------------------------------------

    async def load_best(self, vantage: str | None = None) -> dict[str, str | None]:
        return await restore.load_best(self._core, vantage)

    async def load_members(self, vantage: str | None = None) -> dict[str, set[str]]:
        """model -> hosts whose latest membership event is "joined" (models with none left out)."""
        return await restore.load_members(self._core, vantage)

    async def load_recent_results(
        self, since: float, per_host_limit: int = 200, vantage: str | None = None
    ) -> list[ProbeResult]:
        """Results at or after `since`, at most `per_host_limit` (the newest) per model, host and
        probe kind, oldest first. `detail` is not stored and comes back empty; durations come back
        at whole-millisecond resolution, times at millisecond resolution."""
        return await restore.load_recent_results(self._core, since, per_host_limit, vantage)

    async def load_recent_evidence(
        self, since: float, per_host_limit: int = 200, vantage: str | None = None
    ) -> list[tuple[HostKey, Evidence]]:
        """The results of `load_recent_results`, in the same order, as ((model, host), evidence):
        only what the health state machine reads, without a `ProbeResult` per row (a restart reads
        one per kind and window slot of every host: 150,000 at 1,000 hosts)."""
        return await restore.load_recent_evidence(self._core, since, per_host_limit, vantage)

    async def vantages(self) -> list[VantageInfo]:
        """Every vantage that wrote results, by name, with its newest result's time."""
        listed = await self._core.read("listing vantages", queries.vantage_list)
        return [VantageInfo(name, None if at is None else at / 1000) for name, at in listed]

    # -- maintenance (history reads are inherited from `HistoryReads`) --------------------------

    async def rollup(self, now: float, ttft_ms: float = DEFAULT_TTFT_MS) -> int:
        """Roll up every complete hour not rolled up yet, of every vantage, completions' TTFT
        counted within `ttft_ms` (the `slo_ttft_ms` setting); returns the number of rows written."""
        return await maintenance.rollup(self._core, now, ttft_ms)

    async def slo_window(
        self, now: float, ttft_ms: float = DEFAULT_TTFT_MS, days: float = WINDOW_DAYS
    ) -> WindowCounts:
        """Each model's SLO counts over the `days` before `now`, of this store's vantage."""
        return await budget.window_counts(self._core, now, days, ttft_ms)

    async def apply_retention(self, now: float, raw_days: float = 7, rollup_days: float = 400) -> int:
        """Delete raw results (rolled up) older than `raw_days`, roll-ups, discovery runs and
        incidents older than `rollup_days`, of every vantage, and maintenance windows over and
        notifications settled longer ago than that, and the host facts of pairs that are no members
        any more; returns the number of rows deleted."""
        deleted = await maintenance.apply_retention(self._core, now, raw_days, rollup_days)
        known = await maintenance.known_vantages(self._core)
        return deleted + await facts.delete_retired_facts(self._core, known)
