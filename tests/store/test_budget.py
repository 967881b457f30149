"""The 30-day error budget from the store: the roll-ups keep each hour's SLO counts, the window
adds the raw results not rolled up yet, a restart forgets nothing; and the upkeep's retention of
maintenance windows and notifications."""

from __future__ import annotations

from sqlalchemy import select

from monitor.core.results import Outcome, ProbeKind, ProbeResult
from monitor.core.slo import Objectives, budgets
from monitor.store import Store
from monitor.store.notifications import StoredMessage
from monitor.store.schema import notifications, rollups_hourly

from .conftest import T0, MakeResult

H = int(T0)  # an hour boundary
DAY = 86400


def _hour(make_result: MakeResult, start: float, failures: int = 0) -> list[ProbeResult]:
    """20 ok completions with TTFT 100..1050 ms (every 50 ms), `failures` timed-out completions,
    10 ok health probes, and 3 neutral results (not probed) that count toward nothing."""
    out = [make_result(start + i, kind=ProbeKind.COMPLETION, ttft_ms=100.0 + 50 * i) for i in range(20)]
    out += [
        make_result(start + 100 + i, kind=ProbeKind.COMPLETION, outcome=Outcome.TIMEOUT, ttft_ms=None)
        for i in range(failures)
    ]
    out += [make_result(start + 200 + i) for i in range(10)]
    out += [make_result(start + 300 + i, outcome=Outcome.NOT_PROBED) for i in range(3)]
    return out


async def _submit(store: Store, results: list[ProbeResult]) -> None:
    for r in results:
        store.submit(r)
    await store.flush()


async def test_the_rollup_keeps_each_hours_slo_counts_with_the_ttft_threshold(
    store: Store, make_result: MakeResult
) -> None:
    await _submit(store, _hour(make_result, H, failures=2))
    await store.rollup(H + 3600 + 600, ttft_ms=500.0)
    r = rollups_hourly.c
    cols = (r.slo_probes, r.slo_ok, r.ttft_counted, r.ttft_within, r.ttft_threshold_ms)
    async with store.engine.connect() as conn:
        rows = (await conn.execute(select(*cols))).all()
    # 22 completions + 10 health; TTFT within 500 ms: 100, 150, ..., 500 (9 of the 20).
    assert [tuple(row) for row in rows] == [(32, 30, 20, 9, 500.0)]


async def test_the_window_adds_the_rollups_and_the_results_not_rolled_up_yet(
    store: Store, make_result: MakeResult
) -> None:
    await _submit(store, _hour(make_result, H) + _hour(make_result, H + 3600, failures=1))
    await store.rollup(H + 3600 + 600, ttft_ms=500.0)  # the first hour only
    counts = await store.slo_window(H + 7200, ttft_ms=500.0)
    assert counts.total == {("llama-3", "availability"): 30 + 31, ("llama-3", "ttft"): 40}
    assert counts.good == {("llama-3", "availability"): 60, ("llama-3", "ttft"): 18}
    assert (counts.window_days, counts.since) == (30, H + 7200 - 30 * DAY)


async def test_the_window_covers_the_last_30_days_only(store: Store, make_result: MakeResult) -> None:
    now = float(H + 40 * DAY)
    await _submit(store, _hour(make_result, H, failures=5) + _hour(make_result, now - 5 * DAY))
    await store.rollup(now)
    counts = await store.slo_window(now)
    assert counts.total[("llama-3", "availability")] == 30
    assert counts.good[("llama-3", "availability")] == 30


async def test_the_budget_survives_a_restart(db_url: str, make_result: MakeResult) -> None:
    first = await Store.open(db_url)
    await first.upgrade()
    first.start_writer()
    await _submit(first, _hour(make_result, H, failures=1) + _hour(make_result, H + 3600))
    await first.rollup(H + 3600 + 600)
    before = await first.slo_window(H + 7200)
    await first.close()
    again = await Store.open(db_url)
    try:
        after = await again.slo_window(H + 7200)
    finally:
        await again.close()
    assert after == before
    assert after.total[("llama-3", "availability")] == 61


async def test_a_model_failing_past_its_objective_has_no_budget_left(
    store: Store, make_result: MakeResult
) -> None:
    # 30 good probes and 5 failed: 14% failing where 0.99 allows 1%.
    await _submit(store, _hour(make_result, H, failures=5))
    await store.rollup(H + 3600 + 600)
    counts = await store.slo_window(H + 7200)
    left = budgets(counts.good, counts.total, Objectives())["llama-3"]["availability"].left
    assert left < 0


async def test_rollups_counted_for_another_ttft_threshold_leave_the_ttft_objective_only(
    store: Store, make_result: MakeResult
) -> None:
    await _submit(store, _hour(make_result, H))
    await store.rollup(H + 3600 + 600, ttft_ms=500.0)
    counts = await store.slo_window(H + 7200, ttft_ms=2000.0)
    assert counts.total == {("llama-3", "availability"): 30}


async def test_retention_deletes_windows_over_longer_ago_than_the_rollups_kept(store: Store) -> None:
    now = float(H + 500 * DAY)
    await store.add_window("https://a.libertai.io", None, now - 402 * DAY, now - 401 * DAY, "old")
    ended = await store.add_window(None, "llama-3", now - 402 * DAY, now + DAY, "ended early")
    await store.end_window(ended, now - 401 * DAY)
    await store.add_window(None, "llama-3", now - 399 * DAY, now - 398 * DAY, "recent enough")
    await store.apply_retention(now, raw_days=7, rollup_days=400)
    assert [w.reason for w in await store.load_windows()] == ["recent enough"]


async def test_retention_deletes_old_settled_notifications_and_keeps_pending_ones(store: Store) -> None:
    now = float(H + 500 * DAY)
    old = now - 401 * DAY
    for event, state in (("sent", "sent"), ("dropped", "dropped"), ("pending", None)):
        await store.claim_notification(StoredMessage(event, "json", "t", "b", 0), old)
        if state is not None:
            await store.mark_notification(event, "json", state, 1, old)
    await store.claim_notification(StoredMessage("recent", "json", "t", "b", 0), now - DAY)
    await store.mark_notification("recent", "json", "sent", 1, now - DAY)
    await store.apply_retention(now, raw_days=7, rollup_days=400)
    async with store.engine.connect() as conn:
        left = sorted((await conn.execute(select(notifications.c.event))).scalars())
    assert left == ["pending", "recent"]
