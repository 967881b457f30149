"""Hourly roll-ups, retention, and history over both."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import delete, insert, select, text

from monitor.core.results import Outcome, ProbeKind, ProbeResult
from monitor.store import DiscoveryRecord, HistoryPoint, Store
from monitor.store.schema import hosts, models, rollup_state, rollups_hourly

from .conftest import T0, MakeResult

H = int(T0)  # an hour boundary
A, B = "https://a.libertai.io", "https://b.libertai.io"
DAY = 86400


def _hour_of_results(make_result: MakeResult, start: int, host: str = A) -> list[ProbeResult]:
    """One hour of one (model, host): 101 ok completions with ttft 0..100 ms and total
    1000..1100 ms, 9 timed-out completions, 40 ok health probes (10 ms), 10 failed ones, and 5
    unsupported auth checks (which do not count)."""
    out = []
    for i in range(101):
        out.append(
            make_result(
                start + i * 10, host=host, kind=ProbeKind.COMPLETION, ttft_ms=float(i), total_ms=1000.0 + i
            )
        )
    for i in range(9):
        out.append(
            make_result(
                start + 1500 + i, host=host, kind=ProbeKind.COMPLETION, outcome=Outcome.TIMEOUT, ttft_ms=None
            )
        )
    for i in range(50):
        outcome = Outcome.OK if i < 40 else Outcome.SERVER_ERROR
        out.append(make_result(start + 2000 + i * 5, host=host, outcome=outcome, total_ms=10.0, status=200))
    for i in range(5):
        out.append(make_result(start + 3000 + i, host=host, kind=ProbeKind.AUTH, outcome=Outcome.UNSUPPORTED))
    return out


async def _submit(store: Store, results: list[ProbeResult]) -> None:
    for r in results:
        store.submit(r)
    await store.flush()


async def _rollups(store: Store) -> list[tuple[Any, ...]]:
    async with store.engine.connect() as conn:
        stmt = (
            select(
                hosts.c.url,
                rollups_hourly.c.hour,
                rollups_hourly.c.probes,
                rollups_hourly.c.ok,
                rollups_hourly.c.ttft_ms_p50,
                rollups_hourly.c.ttft_ms_p95,
                rollups_hourly.c.latency_ms_p50,
            )
            .join(hosts, hosts.c.id == rollups_hourly.c.host_id)
            .order_by(rollups_hourly.c.hour, hosts.c.url)
        )
        return [tuple(row) for row in await conn.execute(stmt)]


async def test_rollup_computes_counts_and_percentiles_of_complete_hours(
    store: Store, make_result: MakeResult
) -> None:
    await _submit(store, _hour_of_results(make_result, H) + _hour_of_results(make_result, H + 3600, host=B))
    store.submit(make_result(H + 7200 + 5))  # the current hour: not complete
    await store.flush()
    assert await store.rollup(now=H + 7200 + 600) == 2
    # probes: 110 completions + 50 health (auth "unsupported" left out); ok: 101 + 40.
    # ttft over 0..100 -> p50 50, p95 95; latency from completions (serving probes): p50 1050.
    assert await _rollups(store) == [
        (A, H, 160, 141, 50.0, 95.0, 1050.0),
        (B, H + 3600, 160, 141, 50.0, 95.0, 1050.0),
    ]


async def test_rollup_latency_comes_from_health_probes_when_a_model_has_no_completions(
    store: Store, make_result: MakeResult
) -> None:
    await _submit(store, [make_result(H + i, total_ms=float(10 + i)) for i in range(11)])
    await store.rollup(now=H + 3600 + 600)
    assert await _rollups(store) == [(A, H, 11, 11, None, None, 15.0)]


async def test_rollup_is_idempotent(store: Store, make_result: MakeResult) -> None:
    await _submit(store, _hour_of_results(make_result, H))
    now = H + 3600 + 600
    assert await store.rollup(now) == 1
    before = await _rollups(store)
    assert await store.rollup(now) == 0  # already rolled up
    assert await store.rollup(now + 60) == 0
    # Even forgetting the mark and rolling the same hours again rewrites the same rows.
    async with store.engine.begin() as conn:
        await conn.execute(delete(rollup_state))
    assert await store.rollup(now) == 1
    assert await _rollups(store) == before


async def test_rollup_waits_for_the_grace_period_after_the_hour(
    store: Store, make_result: MakeResult
) -> None:
    await _submit(store, [make_result(H + 3599)])
    assert await store.rollup(now=H + 3600 + 30) == 0  # a probe of that hour may still be running
    assert await store.rollup(now=H + 3600 + 600) == 1


async def test_retention_deletes_old_raw_rows_and_old_rollups_only(
    store: Store, make_result: MakeResult
) -> None:
    now = float(H + 500 * DAY + 1800)
    await _submit(
        store,
        [
            make_result(now - 8 * DAY),  # raw, too old
            make_result(now - 6 * DAY),  # raw, kept
            make_result(now - 60),  # raw, current hour, kept
        ],
    )
    await store.rollup(now)
    await store.record_discovery(DiscoveryRecord(now - 401 * DAY, True, 0.1, 1, 1))
    await store.record_discovery(DiscoveryRecord(now - 1 * DAY, True, 0.1, 1, 1))
    async with store.engine.begin() as conn:
        model_id = (await conn.execute(select(models.c.id))).scalar()
        host_id = (await conn.execute(select(hosts.c.id))).scalar()
        for days in (401, 399):
            hour = int((now - days * DAY) // 3600 * 3600)
            await conn.execute(
                insert(rollups_hourly).values(model_id=model_id, host_id=host_id, hour=hour, probes=1, ok=1)
            )
    assert len(await _rollups(store)) == 4  # 2 inserted + 2 rolled up from raw

    assert await store.apply_retention(now) == 3  # 1 raw row, 1 roll-up, 1 discovery run

    assert [r.started_at for r in await store.load_recent_results(0)] == [now - 6 * DAY, now - 60]
    hours = [row[1] for row in await _rollups(store)]
    assert hours == sorted([int((now - d * DAY) // 3600 * 3600) for d in (399, 8, 6)])
    async with store.engine.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM discovery_runs"))).scalar() == 1
    assert await store.apply_retention(now) == 0


async def test_retention_keeps_raw_rows_that_are_not_rolled_up_yet(
    store: Store, make_result: MakeResult
) -> None:
    now = float(H + 30 * DAY)
    await _submit(store, [make_result(now - 20 * DAY)])
    assert await store.apply_retention(now) == 0
    assert len(await store.load_recent_results(0)) == 1


async def _history_fixture(store: Store, make_result: MakeResult, base: int = H) -> float:
    """Three complete hours from `base` (rolled up, raw deleted) and a partial current hour (raw
    only)."""
    results = []
    for h in range(3):
        for i in range(12):  # 12 completions per hour, ttft = 100*(h+1) + i
            results.append(
                make_result(
                    base + h * 3600 + i * 300,
                    kind=ProbeKind.COMPLETION,
                    ttft_ms=100.0 * (h + 1) + i,
                    total_ms=1000.0,
                    outcome=Outcome.OK if i else Outcome.TIMEOUT,
                )
            )
    for i in range(6):  # current hour: 6 health probes, one every 5 minutes
        results.append(make_result(base + 3 * 3600 + i * 300, total_ms=20.0, host=B))
    await _submit(store, results)
    now = float(base + 3 * 3600 + 1800)
    assert await store.rollup(now) == 3
    # Drop the rolled-up raw rows, so that only roll-ups can answer for those hours.
    assert await store.apply_retention(now, raw_days=0) == 36
    return now


async def test_history_mixes_hourly_rollups_and_raw_results(store: Store, make_result: MakeResult) -> None:
    now = await _history_fixture(store, make_result)
    points = await store.history("llama-3", None, since=H, until=now, step_s=3600)
    # Rolled-up hours: 12 probes, 11 ok (the first timed out); ttft over 11 values 100h+1..100h+11,
    # nearest-rank as in /v1/hosts: p50 is rank 6, p95 rank ceil(10.45) = 11 (an observed value).
    expected = [
        HistoryPoint(H + h * 3600, A, 12, 11, 11 / 12, 100.0 * (h + 1) + 6, 100.0 * (h + 1) + 11, 1000.0)
        for h in range(3)
    ]
    # Current hour from raw rows.
    expected.append(HistoryPoint(H + 3 * 3600, B, 6, 6, 1.0, None, None, 20.0))
    assert points == expected


async def test_history_merges_hours_into_wider_buckets(store: Store, make_result: MakeResult) -> None:
    base = (H // (3 * 3600) + 1) * 3 * 3600  # buckets are aligned on multiples of step_s
    now = await _history_fixture(store, make_result, base)
    points = await store.history("llama-3", A, since=base, until=now, step_s=3 * 3600)
    [point] = points
    assert (point.at, point.host, point.probes, point.ok) == (base, A, 36, 33)
    assert point.ttft_ms_p50 == pytest.approx(206.0)  # ok-weighted mean of the hourly medians


async def test_history_with_small_steps_uses_raw_results_where_they_exist(
    store: Store, make_result: MakeResult
) -> None:
    now = await _history_fixture(store, make_result)
    points = await store.history("llama-3", B, since=H, until=now, step_s=600)
    assert [(p.at, p.probes) for p in points] == [(H + 3 * 3600 + k * 600, 2) for k in range(3)]
    rolled = await store.history("llama-3", A, since=H, until=now, step_s=600)
    assert [(p.at, p.probes) for p in rolled] == [(H + h * 3600, 12) for h in range(3)]


async def test_history_of_an_unknown_model_is_empty(store: Store) -> None:
    assert await store.history("nope", None, since=H, until=H + 3600, step_s=60) == []


async def test_history_percentiles_are_nearest_rank_like_the_live_window(
    store: Store, make_result: MakeResult
) -> None:
    # /v1/hosts reports nearest-rank percentiles (observed values); /v1/history must agree.
    from monitor.core.percentile import percentile as window_percentile

    ttfts = [10.0, 20.0, 30.0, 40.0]
    await _submit(
        store, [make_result(H + i, kind=ProbeKind.COMPLETION, ttft_ms=t) for i, t in enumerate(ttfts)]
    )
    [point] = await store.history("llama-3", None, since=H, until=H + 60, step_s=60)
    assert (point.ttft_ms_p50, point.ttft_ms_p95) == (20.0, 40.0)
    assert (point.ttft_ms_p50, point.ttft_ms_p95) == (
        window_percentile(ttfts, 50),
        window_percentile(ttfts, 95),
    )
