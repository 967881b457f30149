"""Best hosts, membership, discovery runs, and a restart keeping all of it."""

from __future__ import annotations

import pytest
from sqlalchemy import select, text

from monitor.core.membership import MembershipChange
from monitor.core.results import ProbeKind
from monitor.store import DiscoveryRecord, Store
from monitor.store.schema import best_hosts

from .conftest import T0, MakeResult

A, B, C, D = (f"https://{x}.libertai.io" for x in "abcd")


async def test_save_best_upserts_and_load_best_reads_back(store: Store) -> None:
    assert await store.load_best() == {}
    await store.save_best("llama-3", A, T0)
    await store.save_best("qwen", B, T0)
    assert await store.load_best() == {"llama-3": A, "qwen": B}
    await store.save_best("llama-3", C, T0 + 10)
    await store.save_best("qwen", None, T0 + 20)  # no host up
    assert await store.load_best() == {"llama-3": C, "qwen": None}


async def test_save_best_moves_since_only_when_the_host_changes(store: Store) -> None:
    await store.save_best("llama-3", A, T0)
    await store.save_best("llama-3", A, T0 + 60)
    async with store.engine.connect() as conn:
        assert (await conn.execute(select(best_hosts.c.since))).scalar() == T0 * 1000
    await store.save_best("llama-3", B, T0 + 120)
    async with store.engine.connect() as conn:
        assert (await conn.execute(select(best_hosts.c.since))).scalar() == (T0 + 120) * 1000


async def test_membership_events_fold_into_current_members(store: Store) -> None:
    await store.record_membership(
        [
            MembershipChange(T0, "llama-3", A, "joined"),
            MembershipChange(T0, "llama-3", B, "joined"),
            MembershipChange(T0 + 10, "llama-3", A, "left"),
            MembershipChange(T0, "llama-3", C, "joined"),
            MembershipChange(T0 + 10, "llama-3", C, "retired"),
            MembershipChange(T0, "bge-m3", D, "joined"),
            MembershipChange(T0, "gone-model", D, "joined"),
            MembershipChange(T0 + 5, "gone-model", D, "left"),
        ]
    )
    # Recorded later but happened in between: order is by time, not by arrival.
    await store.record_membership([MembershipChange(T0 + 20, "llama-3", A, "joined")])
    await store.record_membership([MembershipChange(T0 + 15, "llama-3", B, "left")])
    assert await store.load_members() == {"llama-3": {A}, "bge-m3": {D}}


async def test_membership_rejects_unknown_event_names(store: Store) -> None:
    with pytest.raises(ValueError, match="unknown membership event"):
        await store.record_membership([MembershipChange(T0, "m", A, "exploded")])  # type: ignore[arg-type]


async def test_discovery_runs_are_recorded_with_a_bounded_error(store: Store) -> None:
    await store.record_discovery(DiscoveryRecord(T0, True, 0.25, 12, 30))
    await store.record_discovery(DiscoveryRecord(T0 + 60, False, 10.0, 0, 0, "timeout " * 200))
    async with store.engine.connect() as conn:
        rows = (
            await conn.execute(
                text("SELECT at, ok, duration_s, models, hosts, error FROM discovery_runs ORDER BY at")
            )
        ).all()
    assert rows[0] == (T0 * 1000, 1, 0.25, 12, 30, None)
    assert rows[1][:5] == ((T0 + 60) * 1000, 0, 10.0, 0, 0)
    assert len(rows[1][5]) == 500


async def test_reopened_database_keeps_everything(db_url: str, make_result: MakeResult) -> None:
    first = await Store.open(db_url)
    await first.upgrade()
    first.start_writer()
    results = [make_result(T0 + i * 30, host=A) for i in range(5)] + [
        make_result(T0 + 1, host=B, kind=ProbeKind.COMPLETION, ttft_ms=250.0)
    ]
    for r in results:
        first.submit(r)
    await first.record_membership([MembershipChange(T0, "llama-3", A, "joined")])
    await first.save_best("llama-3", A, T0)
    await first.record_discovery(DiscoveryRecord(T0, True, 0.1, 1, 1))
    await first.close()  # flushes

    second = await Store.open(db_url)  # a restart: new process state, same file
    await second.upgrade()
    second.start_writer()
    try:
        assert await second.load_recent_results(0) == sorted(results, key=lambda r: r.started_at)
        assert await second.load_members() == {"llama-3": {A}}
        assert await second.load_best() == {"llama-3": A}
        # Names written before the restart keep their ids (no duplicate rows for them).
        second.submit(make_result(T0 + 600, host=A))
        await second.flush()
        async with second.engine.connect() as conn:
            hosts = (await conn.execute(text("SELECT count(*) FROM hosts"))).scalar()
            runs = (await conn.execute(text("SELECT count(*) FROM discovery_runs"))).scalar()
        assert (hosts, runs) == (2, 1)
        assert len(await second.load_recent_results(0)) == 7
    finally:
        await second.close()
