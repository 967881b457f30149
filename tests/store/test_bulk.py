"""Large writes on both backends: every row arrives, values intact; on SQLite a batch is one step
of the driver, not one per row (beside a busy event loop, each step of aiosqlite's thread waits
for the GIL, and a batch of 2,000 took seconds)."""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import event

from monitor.core.membership import MembershipChange
from monitor.core.results import Outcome, ProbeKind
from monitor.store import Store
from monitor.store.writer import DEEP_BATCHES
from tests.store.conftest import T0, MakeResult

N = 2_000


@pytest.fixture
def statements_of() -> Iterator[Callable[[Store], list[tuple[str, bool]]]]:
    """For a store: (statement, executemany) of every statement it runs from then on."""
    listening: list[tuple[Store, Callable[..., None]]] = []

    def start(store: Store) -> list[tuple[str, bool]]:
        seen: list[tuple[str, bool]] = []

        def note(_conn: Any, _cursor: Any, statement: str, _params: Any, _ctx: Any, many: bool) -> None:
            seen.append((statement, many))

        event.listen(store.engine.sync_engine, "before_cursor_execute", note)
        listening.append((store, note))
        return seen

    yield start
    for store, note in listening:
        if event.contains(store.engine.sync_engine, "before_cursor_execute", note):
            event.remove(store.engine.sync_engine, "before_cursor_execute", note)


@pytest.fixture
def statements(
    store: Store, statements_of: Callable[[Store], list[tuple[str, bool]]]
) -> list[tuple[str, bool]]:
    return statements_of(store)


def _host(i: int) -> str:
    return f"https://h{i}.libertai.io"


async def test_a_batch_of_results_from_new_hosts_is_written_whole_with_its_values(
    store: Store, make_result: MakeResult
) -> None:
    store.start_writer()
    for i in range(N):
        store.submit(make_result(T0 + i * 0.001, host=_host(i), kind=ProbeKind.COMPLETION, ttft_ms=100.0 + i))
    store.submit(make_result(T0, host=_host(0), outcome=Outcome.CONNECT_ERROR, status=None, total_ms=None))
    await store.flush()
    assert store.stats.rows_written == N + 1 and store.stats.dropped == 0
    back = await store.load_recent_results(T0 - 1)
    assert len(back) == N + 1
    completions = {r.host: r for r in back if r.kind is ProbeKind.COMPLETION}
    assert completions[_host(1234)].ttft_ms == 1334.0
    assert completions[_host(1234)].started_at == pytest.approx(T0 + 1.234)
    failed = next(r for r in back if r.kind is ProbeKind.HEALTH)
    assert (failed.outcome, failed.status, failed.total_ms) == (Outcome.CONNECT_ERROR, None, None)


async def test_membership_of_many_new_hosts_is_recorded_whole(store: Store) -> None:
    await store.record_membership([MembershipChange(T0, "llama-3", _host(i), "joined") for i in range(N)])
    await store.record_membership([MembershipChange(T0 + 1, "llama-3", _host(0), "left")])
    members = await store.load_members()
    assert members == {"llama-3": {_host(i) for i in range(1, N)}}


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_on_sqlite_a_batch_is_not_written_a_row_at_a_time(
    store: Store, make_result: MakeResult, statements: list[tuple[str, bool]]
) -> None:
    store.start_writer()
    for i in range(N):
        store.submit(make_result(T0 + i, host=_host(i)))
    await store.flush()
    await store.record_membership([MembershipChange(T0, "llama-3", _host(i), "joined") for i in range(N)])
    assert store.stats.rows_written == N
    assert [s for s, many in statements if many] == []
    assert len(statements) < 20  # not one per name, nor per chunk of names


async def test_a_writer_that_is_behind_writes_bigger_batches(
    db_url: str, make_result: MakeResult, statements_of: Callable[[Store], list[tuple[str, bool]]]
) -> None:
    store = await Store.open(db_url, batch_size=10)
    await store.upgrade()
    seen = statements_of(store)
    try:
        for i in range(100):  # queued before the writer starts: ten batches' worth behind
            store.submit(make_result(T0 + i))
        store.start_writer()
        await store.flush()
        assert store.stats.rows_written == 100
        inserts = [s for s, _ in seen if s.split()[0] == "INSERT" and "probe_results" in s.split()[:5]]
        assert len(inserts) == 100 // (10 * DEEP_BATCHES)
    finally:
        await store.close()


async def test_writing_results_and_best_hosts_leaves_no_cyclic_garbage(
    store: Store, make_result: MakeResult
) -> None:
    store.start_writer()

    async def write(at: float) -> None:
        for i in range(50):
            store.submit(make_result(at + i, host=_host(i)))
        await store.flush()
        await store.save_best("llama-3", _host(int(at) % 7), at)

    await write(T0)  # statements compiled and cached, connections open
    gc.collect()
    gc.disable()
    try:
        for n in range(1, 6):
            await write(T0 + 100 * n)
        cyclic = gc.collect()
    finally:
        gc.enable()
    assert store.stats.rows_written == 300
    assert cyclic == 0  # an upsert built per call left its table alias's cycles each time
