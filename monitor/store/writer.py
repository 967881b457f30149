"""The probe-result writer: a bounded queue, one task writing it in batches, retries.

Every submitted result ends up in exactly one place: the database, or a drop counted with its
reason (`DROP_REASONS`). `submit` never blocks or raises. A result waits in memory at most
`flush_interval_s` before its batch is written, while the database works. When the database or
the connection to it fails (locked, read-only, full, gone), the same batch is retried with backoff,
on the injected clock, until it is written: nothing is dropped for a fault that clears. Meanwhile
the queue keeps accepting up to `queue_size` results (the writer's retention bound), and drops the
newest beyond, counted as `queue_full`. A batch the database rejects for its data is split until
the rows it rejects are alone: those are dropped (`rejected`, logged without their contents),
every other row is written.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections import Counter
from collections.abc import Sequence
from typing import Any, Final

from monitor.core.clock import SYSTEM_CLOCK, Clock
from monitor.core.results import ProbeResult
from monitor.logging import get_logger
from monitor.store import bulk, queries
from monitor.store.codes import KIND_CODES, OUTCOME_CODES
from monitor.store.core import Core, describe, finite_or_none, ms, rejects_rows
from monitor.store.engine import write_transaction
from monitor.store.schema import probe_results

log = get_logger("monitor.store")

# Why a result was not written (the `reason` of the dropped-results counter).
QUEUE_FULL: Final = "queue_full"  # the database failed longer than the queue holds
UNSTORABLE: Final = "unstorable"  # unknown kind or outcome, non-finite time, impossible status
REJECTED: Final = "rejected"  # the database refused the row's data
DUPLICATE: Final = "duplicate"  # a result with the same key is stored already
SHUTDOWN: Final = "shutdown"  # submitted after close, or still unwritten when close gave up
DROP_REASONS: Final = (QUEUE_FULL, UNSTORABLE, REJECTED, DUPLICATE, SHUTDOWN)

# A batch of up to this many times `batch_size` when at least `batch_size` results wait.
DEEP_BATCHES = 5
# A result's row, in the order the writer builds it (the vantage is the same for every row).
_RESULT_COLUMNS = (
    "model_id",
    "host_id",
    "at",
    "kind",
    "outcome",
    "status",
    "connect_ms",
    "ttft_ms",
    "total_ms",
)


class ResultWriter:
    """Queue and batching writer of probe results (see module doc)."""

    def __init__(
        self,
        core: Core,
        *,
        queue_size: int,
        batch_size: int,
        flush_interval_s: float,
        retry_initial_s: float,
        retry_max_s: float,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self._core = core
        self._clock = clock
        # (when it was queued, on the clock's monotonic time; the result)
        self._queue: asyncio.Queue[tuple[float, ProbeResult]] = asyncio.Queue(maxsize=queue_size)
        self._batch_size = batch_size
        self._flush_interval_s = flush_interval_s
        self._retry_initial_s = retry_initial_s
        self._retry_max_s = retry_max_s
        # Newest `at` written per (model_id, host_id, kind): two probes that start in the same
        # millisecond get distinct keys (the second one moves 1 ms later).
        self._last_at: dict[tuple[int, int, int], int] = {}
        self._task: asyncio.Task[None] | None = None
        self._inflight: list[ProbeResult] = []
        self._submitted = 0
        self._completed = 0
        self._flush_waiters = 0
        self._progress = asyncio.Condition()
        # Set to end a wait early: a batch is full, a flush is awaited, the store is closing.
        self._wake = asyncio.Event()
        self.closing = False
        self.rows_written = 0
        self.dropped_by: Counter[str] = Counter()
        self._ins_results = queries.insert_ignore(core.dialect, probe_results)
        self._ins_json = bulk.insert_json_rows(
            probe_results, _RESULT_COLUMNS, constants=["vantage"], ignore=True
        )

    @property
    def depth(self) -> int:
        return self._queue.qsize() + len(self._inflight)

    @property
    def dropped(self) -> int:
        return sum(self.dropped_by.values())

    def drop(self, reason: str, count: int = 1) -> None:
        self.dropped_by[reason] += count

    def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name="monitor.store.writer")

    def submit(self, result: ProbeResult) -> None:
        try:
            if self.closing:
                self.drop(SHUTDOWN)
                return
            if (
                result.kind not in KIND_CODES
                or result.outcome not in OUTCOME_CODES
                or not math.isfinite(result.started_at)
                or (result.status is not None and not 0 <= result.status <= 999)
            ):
                self.drop(UNSTORABLE)
                return
            self._queue.put_nowait((self._clock.monotonic(), result))
            self._submitted += 1
            if self._queue.qsize() >= self._batch_size:
                self._wake.set()
        except asyncio.QueueFull:
            self.drop(QUEUE_FULL)
        except Exception:
            self.drop(UNSTORABLE)

    async def flush(self) -> None:
        target = self._submitted
        if self._completed >= target:
            return
        task = self._task
        if task is None or task.done():
            raise RuntimeError("the store's writer is not running (call start_writer())")
        self._flush_waiters += 1
        self._wake.set()
        try:
            async with self._progress:
                await self._progress.wait_for(lambda: self._completed >= target or task.done())
        finally:
            self._flush_waiters -= 1
        if self._completed < target:
            raise RuntimeError("the store's writer stopped")

    async def close(self, grace_s: float) -> None:
        """Write what is queued (waiting at most `grace_s`), then stop; what is left is dropped."""
        self.closing = True
        self._wake.set()  # a batch being gathered goes now, a retry's backoff ends
        if self._task is None and self._queue.qsize():
            self.start()
        if self._task is None:
            return
        try:
            async with asyncio.timeout(grace_s):
                await self.flush()
        except (TimeoutError, RuntimeError):
            log.warning("closing with probe results not written", results=self.depth)
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        lost = self.depth
        if lost:
            self.drop(SHUTDOWN, lost)
            self._inflight = []
            while not self._queue.empty():
                self._queue.get_nowait()

    async def _run(self) -> None:
        try:
            while True:
                batch = await self._next_batch()
                try:
                    await self._write_batch(batch)
                finally:
                    self._completed += len(batch)
                    self._inflight = []
                    async with self._progress:
                        self._progress.notify_all()
        finally:
            async with self._progress:
                self._progress.notify_all()

    async def _nap(self, seconds: float) -> None:
        """Wait `seconds` on the clock, or until woken (see `_wake`)."""
        if self._wake.is_set():
            return
        sleeper = asyncio.ensure_future(self._clock.sleep(seconds))
        waker = asyncio.ensure_future(self._wake.wait())
        try:
            await asyncio.wait({sleeper, waker}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeper.cancel()
            waker.cancel()

    async def _next_batch(self) -> list[ProbeResult]:
        """Up to `batch_size` results (`DEEP_BATCHES` times that when the writer is behind): the
        first one, then whatever arrives until the first one has waited the flush interval (at
        once when a flush is awaited or the store is closing). The deadline counts from when the
        first result was queued, not from when the writer got to it: a result waits at most the
        flush interval, plus the writes of the batches ahead of it."""
        queued_at, first = await self._queue.get()
        batch = [first]
        self._inflight = batch
        deadline = queued_at + self._flush_interval_s
        # Behind: a bigger batch. A transaction costs a few round trips to the driver's thread
        # whatever its size, and on a busy loop each takes a turn or two: batches of `batch_size`
        # could not keep up (docs/performance.md).
        size = self._batch_size * (DEEP_BATCHES if self._queue.qsize() >= self._batch_size else 1)
        while True:
            while len(batch) < size:
                try:
                    batch.append(self._queue.get_nowait()[1])
                except asyncio.QueueEmpty:
                    break
            if len(batch) >= size or self._flush_waiters or self.closing:
                return batch
            remaining = deadline - self._clock.monotonic()
            if remaining <= 0:
                return batch
            self._wake.clear()
            await self._nap(remaining)

    async def _write_batch(self, batch: list[ProbeResult]) -> None:
        """Write `batch`: retry while the database fails (the same rows, never ones already
        written); split a rejected batch in halves until each rejected row is alone, and drop
        only those."""
        pending: list[list[ProbeResult]] = [batch]
        delay = self._retry_initial_s
        try:
            while pending:
                part = pending[0]
                try:
                    written = await self._write_results(part)
                except Exception as error:
                    self._core.record_failure(error, batch=True)
                    if not rejects_rows(error):
                        log.warning(
                            "writing probe results failed, retrying",
                            results=len(part),
                            error=describe(error),
                            retry_in_s=round(delay, 1),
                            queued=self.depth,
                        )
                        await self._core.recover_from(error)
                        if self.closing:  # close's grace period is short: try again soon
                            await self._clock.sleep(min(delay, 0.05))
                        else:
                            self._wake.clear()
                            await self._nap(delay)
                        delay = min(delay * 2, self._retry_max_s)
                        continue
                    pending.pop(0)
                    if len(part) > 1:
                        mid = len(part) // 2
                        pending[:0] = [part[:mid], part[mid:]]
                    else:
                        self.drop(REJECTED)
                        log.error("dropped a probe result the database rejected", error=describe(error))
                    continue
                pending.pop(0)
                self._core.record_success(batch=True)
                self.rows_written += written
                if written < len(part):
                    self.drop(DUPLICATE, len(part) - written)
        except asyncio.CancelledError:
            self.drop(SHUTDOWN, sum(len(p) for p in pending))  # closing while the database fails
            raise

    async def _write_results(self, batch: Sequence[ProbeResult]) -> int:
        core = self._core
        async with write_transaction(core.engine) as conn:
            new_models, new_hosts = await core.ensure_ids(
                conn, {r.model for r in batch}, {r.host for r in batch}
            )
            model_ids = core.model_ids | new_models if new_models else core.model_ids
            host_ids = core.host_ids | new_hosts if new_hosts else core.host_ids
            last_at: dict[tuple[int, int, int], int] = {}
            rows: list[tuple[Any, ...]] = []
            vantage = core.vantage
            for r in batch:
                mid = model_ids[r.model]
                hid = host_ids[r.host]
                kind = KIND_CODES[r.kind]
                at = ms(r.started_at)
                key = (mid, hid, kind)
                prev = last_at.get(key, self._last_at.get(key))
                if prev is not None:
                    if at == prev:
                        at = prev + 1
                    last_at[key] = max(prev, at)
                else:
                    last_at[key] = at
                rows.append(
                    (
                        mid,
                        hid,
                        at,
                        kind,
                        OUTCOME_CODES[r.outcome],
                        r.status,
                        finite_or_none(r.connect_ms),
                        finite_or_none(r.ttft_ms),
                        finite_or_none(r.total_ms),
                    )
                )
            # On SQLite the batch in one step (see monitor.store.bulk).
            result = await bulk.insert(
                conn, self._ins_json, self._ins_results, _RESULT_COLUMNS, rows, vantage=vantage
            )
            written = result.rowcount if result.rowcount is not None and result.rowcount >= 0 else len(rows)
            newest = max(row[2] for row in rows)
            await conn.execute(
                queries.touch_vantage(core.dialect), {"name": vantage, "last_result_at": newest}
            )
        core.commit_ids((new_models, new_hosts))
        self._last_at.update(last_at)
        return written
