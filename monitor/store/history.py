"""History reads: buckets of one model's hosts over raw results and hourly roll-ups."""

from __future__ import annotations

import math
from collections import defaultdict

from sqlalchemy import select
from sqlalchemy.engine import Connection

from monitor.core.steps import Steps
from monitor.slices import run_in_slices
from monitor.store import queries
from monitor.store.aggregate import Agg, Observation, aggregate, merge
from monitor.store.core import Core, ms
from monitor.store.restore import names
from monitor.store.schema import hosts, models, probe_results, rollups_hourly
from monitor.store.types import HistoryPoint

HOUR = 3600

# host URL -> (raw rows, hourly roll-up rows)
HostData = dict[str, tuple[list[queries.RawRow], list[queries.RollupRow]]]


class HistoryReads:
    """`Store.history` (`Store` inherits it and provides `_core`)."""

    _core: Core

    async def history(
        self,
        model: str,
        host: str | None,
        since: float,
        until: float,
        step_s: int,
        vantage: str | None = None,
    ) -> list[HistoryPoint]:
        """Buckets of `step_s` seconds (aligned on multiples of step_s since the epoch) in
        [since, until), one point per host with data, sorted by time then host.

        Hours already rolled up come from `rollups_hourly` when step_s >= 3600; the rest (the current
        partial hour, or everything raw when step_s < 3600) from raw results. Where raw results are
        gone, roll-ups fill in (at hourly resolution)."""
        if step_s <= 0:
            raise ValueError("step_s must be positive")
        of = self._core.vantage_of(vantage)
        since_ms, until_ms = ms(since), ms(until)
        since_hour = int(since // HOUR) * HOUR
        until_hour = math.ceil(until / HOUR) * HOUR

        def run(conn: Connection) -> HostData:
            model_id = conn.execute(select(models.c.id).where(models.c.name == model)).scalar()
            if model_id is None:
                return {}
            if host is None:
                host_ids = sorted(
                    {h for _, h in queries.distinct_pairs(conn, probe_results, of, model_id)}
                    | {h for _, h in queries.distinct_pairs(conn, rollups_hourly, of, model_id)}
                )
            else:
                hid = conn.execute(select(hosts.c.id).where(hosts.c.url == host)).scalar()
                host_ids = [] if hid is None else [hid]
            mark = queries.rolled_until(conn, of)
            _, host_urls = names(conn)
            out: HostData = {}
            for hid in host_ids:
                rolled_end = min(mark, until_hour) if mark is not None else since_hour
                if step_s >= HOUR:
                    raw_from = max(since_ms, rolled_end * 1000)
                    raw = queries.raw_rows(conn, of, model_id, hid, raw_from, until_ms)
                else:
                    raw = queries.raw_rows(conn, of, model_id, hid, since_ms, until_ms)
                    if raw:
                        first_raw_hour = (raw[0][0] // 1000) // HOUR * HOUR
                        rolled_end = min(rolled_end, first_raw_hour)
                rolled = (
                    queries.rollup_rows(conn, of, model_id, hid, since_hour, rolled_end)
                    if rolled_end > since_hour
                    else []
                )
                if raw or rolled:
                    out[host_urls[hid]] = (raw, rolled)
            return out

        data = await self._core.read("reading history", run)
        return await run_in_slices(history_points(data, step_s))


def history_points(data: HostData, step_s: int) -> Steps[list[HistoryPoint]]:
    """Bucket raw rows and hourly roll-ups of each host into points (pure), a step per host."""
    points: list[HistoryPoint] = []
    for url, (raw, rolled) in data.items():
        raw_by_bucket: dict[int, list[Observation]] = defaultdict(list)
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
        yield None
    points.sort(key=lambda p: (p.at, p.host))
    return points
