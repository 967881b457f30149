"""Read-only queries for the status page: hourly and daily buckets per (model, host).

Hours that were rolled up come from `rollups_hourly`; the rest (the current hour, and any hour the
roll-up job has not reached yet) from `probe_results`, aggregated the same way (`aggregate`). Days
over 90 days are summed from the roll-ups in SQL; that read is the heavy one (up to 2,160 rows per
host) and is repeated only every `DAILY_EVERY_S`: the days since it are filled in from the hourly
buckets, which are read every refresh.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import Select, case, func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from monitor.core.keys import HostKey
from monitor.core.steps import Steps, finish
from monitor.slices import run_in_slices
from monitor.store.aggregate import Observation, aggregate
from monitor.store.engine import read_transaction
from monitor.store.schema import hosts, models, probe_results, rollup_state, rollups_hourly
from monitor.web.status.history import (
    DAY,
    DAYS_SHOWN,
    HOUR,
    HOURS_SHOWN,
    Bucket,
    History,
    day_start,
    hour_start,
    merge,
)

DAILY_EVERY_S: Final = 600.0
# Rows fetched from the database per turn of the loop, and rows (or host pairs) handled per step.
_ROWS_PER_FETCH: Final = 2_000
_ROWS_PER_STEP: Final = 2_000
_PAIRS_PER_STEP: Final = 500
# Raw results are read for at most this long back: older un-rolled hours are left out, not scanned.
_RAW_HORIZON_S: Final = (HOURS_SHOWN + 1) * HOUR

Series = dict[HostKey, dict[float, Bucket]]


@dataclass(frozen=True, slots=True)
class DailyCut:
    """The days summed from roll-ups before `cut` (epoch seconds, an hour boundary)."""

    cut: float
    days: Mapping[HostKey, Mapping[float, Bucket]]
    read_at: float


async def _rows(conn: AsyncConnection, query: Select[Any]) -> list[Any]:
    """Every row of `query`, fetched `_ROWS_PER_FETCH` at a time: the loop turns between fetches
    (a large fleet's read is hundreds of thousands of rows, made into Row objects on the loop)."""
    rows: list[Any] = []
    result = await conn.stream(query)
    async for part in result.partitions(_ROWS_PER_FETCH):
        rows.extend(part)
    return rows


async def _names(conn: AsyncConnection) -> tuple[dict[int, str], dict[int, str]]:
    m = dict(await _rows(conn, select(models.c.id, models.c.name)))
    h = dict(await _rows(conn, select(hosts.c.id, hosts.c.url)))
    return m, h


async def _rolled_until(conn: AsyncConnection) -> float:
    value = (await conn.execute(select(rollup_state.c.rolled_until))).scalar()
    return float(value) if value is not None else 0.0


async def _hourly_rollups(conn: AsyncConnection, since: float, until: float) -> list[Any]:
    q = select(
        rollups_hourly.c.model_id,
        rollups_hourly.c.host_id,
        rollups_hourly.c.hour,
        rollups_hourly.c.probes,
        rollups_hourly.c.ok,
        rollups_hourly.c.ttft_ms_p50,
        rollups_hourly.c.ttft_ms_p95,
    ).where(rollups_hourly.c.hour >= int(since), rollups_hourly.c.hour < int(until))
    return await _rows(conn, q)


async def _raw(conn: AsyncConnection, since: float) -> list[Any]:
    q = select(
        probe_results.c.model_id,
        probe_results.c.host_id,
        probe_results.c.at,
        probe_results.c.kind,
        probe_results.c.outcome,
        probe_results.c.ttft_ms,
        probe_results.c.total_ms,
    ).where(probe_results.c.at >= int(since * 1000))
    return await _rows(conn, q)


async def _daily_rollups(conn: AsyncConnection, since: float, until: float) -> list[Any]:
    r = rollups_hourly.c
    day = (r.hour // DAY).label("day")
    weight = case((r.ok > 0, r.ok), else_=1)
    w50 = case((r.ttft_ms_p50.is_not(None), weight), else_=0)
    w95 = case((r.ttft_ms_p95.is_not(None), weight), else_=0)
    q = (
        select(
            r.model_id,
            r.host_id,
            day,
            func.sum(r.probes),
            func.sum(r.ok),
            func.sum(r.ttft_ms_p50 * weight),
            func.sum(w50),
            func.sum(r.ttft_ms_p95 * weight),
            func.sum(w95),
        )
        .where(r.hour >= int(since), r.hour < int(until))
        .group_by(r.model_id, r.host_id, day)
    )
    return await _rows(conn, q)


def _hourly(
    rollup_rows: Sequence[Any], raw_rows: Sequence[Any], m: Mapping[int, str], h: Mapping[int, str]
) -> Steps[Series]:
    """Hourly buckets from roll-up rows and raw rows (pure), in steps of `_ROWS_PER_STEP`."""
    out: Series = defaultdict(dict)
    for n, (model_id, host_id, hour, probes, ok, p50, p95) in enumerate(rollup_rows, 1):
        if model_id in m and host_id in h and probes:
            out[HostKey(m[model_id], h[host_id])][float(hour)] = Bucket(float(hour), probes, ok, p50, p95)
        if n % _ROWS_PER_STEP == 0:
            yield None
    grouped: dict[tuple[int, int, float], list[Observation]] = defaultdict(list)
    for n, (model_id, host_id, at, kind, outcome, ttft, total) in enumerate(raw_rows, 1):
        grouped[(model_id, host_id, hour_start(at / 1000))].append((kind, outcome, ttft, total))
        if n % _ROWS_PER_STEP == 0:
            yield None
    done = 0
    for (model_id, host_id, hour), rows in grouped.items():
        done += len(rows)
        if done >= _ROWS_PER_STEP:
            done = 0
            yield None
        agg = aggregate(rows)
        if agg is None or model_id not in m or host_id not in h:
            continue
        out[HostKey(m[model_id], h[host_id])][hour] = Bucket(
            hour, agg.probes, agg.ok, agg.ttft_ms_p50, agg.ttft_ms_p95
        )
    return dict(out)


def _daily(rows: Sequence[Any], m: Mapping[int, str], h: Mapping[int, str]) -> Steps[Series]:
    out: Series = defaultdict(dict)
    for n, (model_id, host_id, day, probes, ok, s50, w50, s95, w95) in enumerate(rows, 1):
        if model_id in m and host_id in h and probes:
            at = float(int(day) * DAY)
            p50 = s50 / w50 if w50 else None
            p95 = s95 / w95 if w95 else None
            out[HostKey(m[model_id], h[host_id])][at] = Bucket(at, int(probes), int(ok), p50, p95)
        if n % _ROWS_PER_STEP == 0:
            yield None
    return dict(out)


def combine_days(
    cut: DailyCut | None, hourly: Mapping[HostKey, Mapping[float, Bucket]], now: float
) -> Series:
    """Days before the cut from the roll-up sums; hours from the cut on from the hourly buckets."""
    return finish(_combine_days(cut, hourly, now))


def _combine_days(
    cut: DailyCut | None, hourly: Mapping[HostKey, Mapping[float, Bucket]], now: float
) -> Steps[Series]:
    out: Series = {}
    for n, (pair, days) in enumerate((cut.days if cut else {}).items(), 1):
        out[pair] = dict(days)
        if n % _PAIRS_PER_STEP == 0:
            yield None
    since = cut.cut if cut else 0.0
    first_day = day_start(now) - (DAYS_SHOWN - 1) * DAY
    for n, (pair, hours) in enumerate(hourly.items(), 1):
        if n % _PAIRS_PER_STEP == 0:
            yield None
        by_day: dict[float, list[Bucket]] = defaultdict(list)
        for at, b in hours.items():
            if at >= since and at >= first_day:
                by_day[day_start(at)].append(b)
        if not by_day:
            continue
        days = out.setdefault(pair, {})
        for d, parts in by_day.items():
            earlier = days.get(d)
            days[d] = merge(d, [earlier, *parts] if earlier else parts)
    return out


class HistoryReader:
    """Reads `History` from the store's engine; keeps the daily sums between their refreshes."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._cut: DailyCut | None = None
        self._version = 0
        self._epoch = 0

    async def read(self, now: float) -> History:
        since = hour_start(now) - (HOURS_SHOWN - 1) * HOUR
        async with read_transaction(self._engine) as conn:
            m, h = await _names(conn)
            rolled = await _rolled_until(conn)
            rollup_rows = await _hourly_rollups(conn, since, rolled)
            raw_rows = await _raw(conn, max(rolled, now - _RAW_HORIZON_S, since))
            cut = self._cut
            if cut is None or now - cut.read_at >= DAILY_EVERY_S or cut.cut < since:
                first_day = day_start(now) - (DAYS_SHOWN - 1) * DAY
                daily_rows = await _daily_rollups(conn, first_day, rolled)
                cut = None
        # On the loop in steps, not in a worker thread: docs/performance.md.
        hourly = await run_in_slices(_hourly(rollup_rows, raw_rows, m, h))
        if cut is None:
            days = await run_in_slices(_daily(daily_rows, m, h))
            cut = self._cut = DailyCut(rolled, days, now)
            self._epoch += 1
        daily = await run_in_slices(_combine_days(cut, hourly, now))
        self._version += 1
        return History(hourly=hourly, daily=daily, loaded_at=now, version=self._version, epoch=self._epoch)
