"""Follower reads (monitor/store/tail.py) on SQLite and on PostgreSQL: every result the leader
writes after the cursor comes back exactly once, whatever order the writes reach the database in."""

from __future__ import annotations

from typing import Any

from monitor.core.membership import MembershipChange
from monitor.core.results import Outcome, ProbeKind, ProbeResult
from monitor.store import Store
from monitor.store.tail import MembershipTail, ResultTail, TailCursor, load_best

T0 = 1_700_002_800.0
A, B = "https://a.libertai.io", "https://b.libertai.io"


def result(at: float, host: str = A, kind: ProbeKind = ProbeKind.HEALTH) -> ProbeResult:
    ttft = 300.0 if kind is ProbeKind.COMPLETION else None
    return ProbeResult("llama-3", host, kind, Outcome.OK, at, 200, 3.0, ttft, 40.0)


async def write(store: Store, *results: ProbeResult) -> None:
    for r in results:
        store.submit(r)
    await store.flush()


async def drain(tail: ResultTail) -> list[ProbeResult]:
    out: list[ProbeResult] = []
    while True:
        out += await tail.read()
        if not tail.more:
            return out


async def test_tail_returns_new_results_in_start_order(store: Store) -> None:
    tail = ResultTail(store.engine, TailCursor.starting_at(T0))
    written = [result(T0 + 2, B), result(T0 + 1, A), result(T0 + 3, A, ProbeKind.COMPLETION)]
    await write(store, *written)
    assert await tail.read() == sorted(written, key=lambda r: r.started_at)


async def test_tail_returns_nothing_twice(store: Store) -> None:
    tail = ResultTail(store.engine, TailCursor.starting_at(T0))
    await write(store, result(T0 + 1), result(T0 + 2))
    assert len(await tail.read()) == 2
    assert await tail.read() == []
    await write(store, result(T0 + 3))
    assert [r.started_at for r in await tail.read()] == [T0 + 3]


async def test_result_written_late_but_started_earlier_is_not_missed(store: Store) -> None:
    tail = ResultTail(store.engine, TailCursor.starting_at(T0), overlap_s=120)
    await write(store, result(T0 + 30, B))  # a health probe that started and ended after ...
    assert len(await tail.read()) == 1
    slow = result(T0 + 1, A, ProbeKind.COMPLETION)  # ... a completion that started before it
    await write(store, slow)
    assert await tail.read() == [slow]


async def test_result_written_late_in_a_second_already_read_is_not_missed(store: Store) -> None:
    tail = ResultTail(store.engine, TailCursor.starting_at(T0))
    await write(store, result(T0 + 1.2, A), result(T0 + 5, A))
    assert len(await tail.read()) == 2
    late = result(T0 + 1.7, B, ProbeKind.COMPLETION)  # same second as one already returned
    await write(store, late)
    assert await tail.read() == [late]


async def test_results_before_the_starting_point_are_not_returned(store: Store) -> None:
    await write(store, result(T0 - 5), result(T0 + 5))
    tail = ResultTail(store.engine, TailCursor.starting_at(T0))
    assert [r.started_at for r in await tail.read()] == [T0 + 5]


def key(r: ProbeResult) -> tuple[float, str]:
    return (r.started_at, r.host)


async def test_batches_together_return_every_result_once(store: Store) -> None:
    written = [result(T0 + i // 2, A if i % 2 else B) for i in range(23)]
    await write(store, *written)
    tail = ResultTail(store.engine, TailCursor.starting_at(T0), batch=5)
    first = await tail.read()
    assert len(first) == 5 and tail.more
    got = first + await drain(tail)
    assert sorted(got, key=key) == sorted(written, key=key)
    assert len({key(r) for r in got}) == len(got)


async def test_tail_of_one_vantage_can_be_asked_by_name(store: Store) -> None:
    # A name narrows the tail to that vantage's rows.
    await write(store, result(T0 + 1))
    tail = ResultTail(store.engine, TailCursor.starting_at(T0), vantage="default")
    assert len(await tail.read()) == 1


async def test_membership_tail_returns_changes_once_in_order(store: Store) -> None:
    tail = MembershipTail(store.engine)
    await store.record_membership([MembershipChange(T0, "llama-3", A, "joined")])
    await store.record_membership(
        [MembershipChange(T0 + 1, "llama-3", B, "joined"), MembershipChange(T0 + 2, "llama-3", A, "left")]
    )
    changes = await tail.read()
    assert [(c.host, c.event) for c in changes] == [(A, "joined"), (B, "joined"), (A, "left")]
    assert await tail.read() == []


async def test_membership_tail_started_at_the_latest_id_skips_the_restored_past(store: Store) -> None:
    await store.record_membership([MembershipChange(T0, "llama-3", A, "joined")])
    tail = MembershipTail(store.engine)
    tail.after_id = await tail.latest_id()
    await store.record_membership([MembershipChange(T0 + 1, "llama-3", B, "joined")])
    assert [c.host for c in await tail.read()] == [B]


async def test_best_hosts_read_gives_the_leaders_choices(store: Store) -> None:
    await store.save_best("llama-3", A, T0)
    await store.save_best("mistral", None, T0 + 1)
    assert await load_best(store.engine) == {"llama-3": (A, T0), "mistral": (None, T0 + 1)}


async def test_tail_of_one_vantage_leaves_out_the_others(db_url: str) -> None:
    stores: dict[str, Store] = {}
    for name in ("eu", "us"):
        options: dict[str, Any] = {"vantage": name, "retry_initial_s": 0.05, "retry_max_s": 0.2}
        stores[name] = await Store.open(db_url, **options)
    try:
        await stores["eu"].upgrade()
        for name, s in stores.items():
            s.start_writer()
            await write(s, result(T0 + 1, A if name == "eu" else B))
        tail = ResultTail(stores["eu"].engine, TailCursor.starting_at(T0), vantage="eu")
        assert [r.host for r in await tail.read()] == [A]
    finally:
        for s in stores.values():
            await s.close(grace_s=2)
