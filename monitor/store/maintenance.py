"""Maintenance: hourly roll-ups of raw results, and retention (deleting what is too old)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any, Final

from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

from monitor.core.steps import Steps
from monitor.slices import run_in_slices
from monitor.store import queries
from monitor.store.aggregate import Observation, aggregate, round_ms, slo_tally
from monitor.store.core import Core, ms
from monitor.store.incidents import delete_incidents_before
from monitor.store.notifications import delete_settled_before
from monitor.store.schema import probe_results, rollups_hourly
from monitor.store.windows import delete_windows_over_before

HOUR: Final = 3600
DAY: Final = 86400
# Hours are rolled up only once they ended this long ago, so that probes still running (or still
# queued for the writer) at the hour's end are counted.
ROLLUP_GRACE_S: Final = 120.0
# At most this many hours are read and written per roll-up transaction (a first roll-up over days
# of raw results proceeds in chunks; the aggregation itself runs in a worker thread).
ROLLUP_CHUNK_HOURS: Final = 6
# Retention deletes this many (model, host) pairs per transaction, so the writer never waits long.
RETENTION_PAIRS_PER_TX: Final = 100


async def known_vantages(core: Core) -> list[str]:
    """Every vantage that wrote results, and this store's own."""
    listed = await core.read("listing vantages", queries.vantage_list)
    return sorted({name for name, _ in listed} | {core.vantage})


async def rollup(core: Core, now: float, ttft_ms: float) -> int:
    """Aggregate every complete hour (ended at least ROLLUP_GRACE_S ago) not rolled up yet into one
    row per (vantage, hour, model, host), for every vantage (each has its own mark, so a vantage
    whose monitor stopped is still rolled up), completions' TTFT counted within `ttft_ms`.
    Idempotent: an hour is rolled up once, and rolling it up again (upsert) gives the same row.
    Returns the number of rows written."""
    written = 0
    for vantage in await known_vantages(core):
        written += await _rollup_vantage(core, vantage, now, ttft_ms)
    return written


async def _rollup_vantage(core: Core, vantage: str, now: float, ttft_ms: float) -> int:
    end_hour = int((now - ROLLUP_GRACE_S) // HOUR) * HOUR

    def start(conn: Connection) -> int | None:
        mark = queries.rolled_until(conn, vantage)
        if mark is not None:
            return mark
        earliest = queries.earliest_raw_ms(conn, vantage)
        return None if earliest is None else (earliest // 1000) // HOUR * HOUR

    begin = await core.read("reading the roll-up mark", start)
    if begin is None or begin >= end_hour:
        return 0
    written = 0
    while begin < end_hour:
        chunk_end = min(begin + ROLLUP_CHUNK_HOURS * HOUR, end_hour)
        lo, hi = begin, chunk_end

        def read_chunk(conn: Connection, lo: int = lo, hi: int = hi) -> queries.RawByIdPair:
            return queries.raw_for_rollup(conn, vantage, lo * 1000, hi * 1000)

        raw = await core.read("reading probe results for roll-up", read_chunk)
        rows = await run_in_slices(rollup_rows(vantage, raw, ttft_ms))

        async def write(conn: AsyncConnection, rows: list[dict[str, Any]] = rows, hi: int = hi) -> None:
            await conn.run_sync(queries.write_rollups, vantage, rows, hi)

        await core.write("writing roll-ups", write)
        written += len(rows)
        begin = chunk_end
    return written


async def apply_retention(core: Core, now: float, raw_days: float, rollup_days: float) -> int:
    """Delete, for every vantage, raw results older than `raw_days` (only those already rolled
    up), roll-ups, discovery runs and incidents older than `rollup_days`; and, shared by every
    vantage, maintenance windows over and notifications sent or dropped more than `rollup_days`
    ago. Returns the number of rows deleted. Membership events and best hosts are kept (they are
    few)."""
    deleted = 0
    for vantage in await known_vantages(core):
        deleted += await _retention_vantage(core, vantage, now, raw_days, rollup_days)
    cut_ms = ms(now - rollup_days * DAY)
    deleted += await core.write("applying retention", _runner(delete_windows_over_before, cut_ms))
    deleted += await core.write("applying retention", _runner(delete_settled_before, cut_ms))
    return deleted


async def _retention_vantage(
    core: Core, vantage: str, now: float, raw_days: float, rollup_days: float
) -> int:
    raw_cut_ms = ms(now - raw_days * DAY)
    rollup_cut_hour = int((now - rollup_days * DAY) // HOUR) * HOUR

    def plan(conn: Connection) -> tuple[int | None, list[queries.IdPair], list[queries.IdPair]]:
        return (
            queries.rolled_until(conn, vantage),
            queries.distinct_pairs(conn, probe_results, vantage),
            queries.distinct_pairs(conn, rollups_hourly, vantage),
        )

    mark, raw_pairs, rollup_pairs = await core.read("planning retention", plan)
    if mark is None:
        raw_pairs = []  # nothing rolled up yet: keep all raw rows
    else:
        raw_cut_ms = min(raw_cut_ms, mark * 1000)
    deleted = 0
    for i in range(0, len(raw_pairs), RETENTION_PAIRS_PER_TX):
        chunk = raw_pairs[i : i + RETENTION_PAIRS_PER_TX]
        step = _runner(queries.delete_raw_before, vantage, chunk, raw_cut_ms)
        deleted += await core.write("applying retention", step)
    for i in range(0, len(rollup_pairs), RETENTION_PAIRS_PER_TX):
        chunk = rollup_pairs[i : i + RETENTION_PAIRS_PER_TX]
        step = _runner(queries.delete_rollups_before, vantage, chunk, rollup_cut_hour)
        deleted += await core.write("applying retention", step)
    step = _runner(queries.delete_discovery_before, vantage, rollup_cut_hour * 1000)
    deleted += await core.write("applying retention", step)
    step = _runner(delete_incidents_before, vantage, rollup_cut_hour * 1000)
    deleted += await core.write("applying retention", step)
    return deleted


def _runner(fn: Callable[..., int], *args: Any) -> Callable[[AsyncConnection], Awaitable[int]]:
    """A write step running `fn(sync_connection, *args)` in the caller's transaction."""

    async def run(conn: AsyncConnection) -> int:
        return await conn.run_sync(fn, *args)

    return run


def rollup_rows(vantage: str, raw: queries.RawByIdPair, ttft_ms: float) -> Steps[list[dict[str, Any]]]:
    """One roll-up row per (model, host, hour) of one vantage's raw rows (pure), a step per host."""
    rows: list[dict[str, Any]] = []
    for (model_id, host_id), results in raw.items():
        by_hour: dict[int, list[Observation]] = defaultdict(list)
        for at, kind, outcome, ttft, total in results:
            by_hour[(at // 1000) // HOUR * HOUR].append((kind, outcome, ttft, total))
        for hour, hour_rows in sorted(by_hour.items()):
            agg = aggregate(hour_rows)
            if agg is None:
                continue
            slo = slo_tally(hour_rows, ttft_ms)
            rows.append(
                {
                    "vantage": vantage,
                    "model_id": model_id,
                    "host_id": host_id,
                    "hour": hour,
                    "probes": agg.probes,
                    "ok": agg.ok,
                    "ttft_ms_p50": round_ms(agg.ttft_ms_p50),
                    "ttft_ms_p95": round_ms(agg.ttft_ms_p95),
                    "latency_ms_p50": round_ms(agg.latency_ms_p50),
                    "slo_probes": slo.probes,
                    "slo_ok": slo.ok,
                    "ttft_counted": slo.ttft_counted,
                    "ttft_within": slo.ttft_within,
                    "ttft_threshold_ms": ttft_ms,
                }
            )
        yield None
    return rows
