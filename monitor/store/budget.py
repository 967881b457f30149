"""The SLO counts of a window (the error budget's 30 days): hourly roll-ups for the hours rolled
up, raw results for the rest (the hour under way and any not rolled up yet), of one vantage.

Each statement walks one (model, host) of a table's primary key over the window, as retention
does, rather than the whole table. The roll-up mark is read first: hours before it come from the
roll-ups only and results from it on from the raw table only, so a roll-up finishing meanwhile
counts nothing twice. Roll-ups whose TTFT counts were taken for another threshold than today's
`slo_ttft_ms` leave the TTFT objective (they cannot be recounted); availability keeps them.
"""

from __future__ import annotations

from collections import Counter
from typing import Final

from sqlalchemy import bindparam, case, func, select
from sqlalchemy.engine import Connection

from monitor.core.slo import AVAILABILITY, TTFT, WindowCounts
from monitor.store import queries
from monitor.store.aggregate import SloTally, slo_tally
from monitor.store.core import Core, ms
from monitor.store.schema import models, probe_results, rollups_hourly

HOUR: Final = 3600
DAY: Final = 86400

_r = rollups_hourly.c
_p = probe_results.c
_same_threshold = _r.ttft_threshold_ms == bindparam("thr")
_ROLLUP_SUMS = select(
    func.coalesce(func.sum(_r.slo_probes), 0),
    func.coalesce(func.sum(_r.slo_ok), 0),
    func.coalesce(func.sum(case((_same_threshold, _r.ttft_counted), else_=0)), 0),
    func.coalesce(func.sum(case((_same_threshold, _r.ttft_within), else_=0)), 0),
).where(
    _r.vantage == bindparam("v"),
    _r.model_id == bindparam("m"),
    _r.host_id == bindparam("h"),
    _r.hour >= bindparam("lo"),
    _r.hour < bindparam("hi"),
)
# The raw tail grouped in the database: (kind, outcome, results, with a TTFT, within the threshold).
_RAW_GROUPS = (
    select(
        _p.kind,
        _p.outcome,
        func.count(),
        func.count(_p.ttft_ms),
        func.coalesce(func.sum(case((_p.ttft_ms <= bindparam("thr"), 1), else_=0)), 0),
    )
    .where(
        _p.vantage == bindparam("v"),
        _p.model_id == bindparam("m"),
        _p.host_id == bindparam("h"),
        _p.at >= bindparam("since"),
        _p.at <= bindparam("until"),
    )
    .group_by(_p.kind, _p.outcome)
)


def _raw_tally(groups: list[tuple[int, int, int, int, int]], ttft_ms: float) -> SloTally:
    """`slo_tally` of grouped raw rows: the rule applied to one result of each group (with a TTFT,
    to learn whether the group's timed results count for TTFT), scaled by the group's counts."""
    probes = ok = counted = within = 0
    for kind, outcome, n, with_ttft, n_within in groups:
        one = slo_tally([(kind, outcome, 0.0, None)], ttft_ms)
        probes += one.probes * n
        ok += one.ok * n
        if one.ttft_counted:
            counted += with_ttft
            within += n_within
    return SloTally(probes, ok, counted, within)


def _counts(conn: Connection, vantage: str, until: float, days: float, ttft_ms: float) -> WindowCounts:
    names = {int(i): str(n) for i, n in conn.execute(select(models.c.id, models.c.name))}
    first_hour = int((until - days * DAY) // HOUR) * HOUR
    mark = queries.rolled_until(conn, vantage)
    rolled_end = first_hour if mark is None else max(mark, first_hour)
    good: Counter[tuple[str, str]] = Counter()
    total: Counter[tuple[str, str]] = Counter()

    def add(model_id: int, t: SloTally) -> None:
        model = names.get(model_id)
        if not model:
            return
        total[(model, AVAILABILITY)] += t.probes
        good[(model, AVAILABILITY)] += t.ok
        total[(model, TTFT)] += t.ttft_counted
        good[(model, TTFT)] += t.ttft_within

    if rolled_end > first_hour:
        for m, h in queries.distinct_pairs(conn, rollups_hourly, vantage):
            params = {"v": vantage, "m": m, "h": h, "lo": first_hour, "hi": rolled_end, "thr": ttft_ms}
            p, o, c, w = conn.execute(_ROLLUP_SUMS, params).one()
            add(m, SloTally(int(p), int(o), int(c), int(w)))
    raw_since = ms(rolled_end)
    for m, h in queries.distinct_pairs(conn, probe_results, vantage):
        params = {"v": vantage, "m": m, "h": h, "since": raw_since, "until": ms(until), "thr": ttft_ms}
        groups = [
            (int(k), int(o), int(n), int(c), int(w)) for k, o, n, c, w in conn.execute(_RAW_GROUPS, params)
        ]
        add(m, _raw_tally(groups, ttft_ms))
    # An objective with no event is left out, as in the counts since start.
    return WindowCounts(
        good={k: good[k] for k, n in total.items() if n},
        total={k: n for k, n in total.items() if n},
        since=float(first_hour),
        until=until,
        window_days=days,
    )


async def window_counts(core: Core, now: float, days: float, ttft_ms: float) -> WindowCounts:
    """Each model's SLO counts over the `days` before `now` (from the start of that hour), of the
    store's own vantage; raises `StoreError` when the database cannot answer."""

    def read(conn: Connection) -> WindowCounts:
        return _counts(conn, core.vantage, now, days, ttft_ms)

    return await core.read("reading the error budgets", read)
