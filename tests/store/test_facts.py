"""Host facts in the database (monitor.store.facts): the latest of each (vantage, model, host,
kind) reads back as written, an unreadable row is skipped and counted, a database fault delays
the write without losing it, and a retired member's facts go with the store's upkeep."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import text

from monitor.core.host_facts import StoredFact
from monitor.core.identity import Fingerprint
from monitor.core.membership import MembershipChange
from monitor.core.paths import Paths
from monitor.core.results import ProbeKind
from monitor.core.throughput import Throughput
from monitor.store import Store, StoreError
from tests.service.support import eventually

from .conftest import T0, StatementFault

M = "llama-3"
A, B = "https://a.libertai.io", "https://b.libertai.io"
PRINT = Fingerprint(17, ("Paris",), {"Paris": -0.01})
PATHS = Paths(("/v1/chat/completions",), ("/v1/messages",))
FAST = Throughput(16, 40.0, 25.0)


async def test_facts_read_back_as_written_the_latest_of_each_key(store: Store) -> None:
    store.submit_fact(StoredFact(M, A, ProbeKind.THROUGHPUT, T0, Throughput(16, 10.0, 100.0)))
    written = [
        StoredFact(M, A, ProbeKind.IDENTITY, T0 + 1, PRINT),
        StoredFact(M, A, ProbeKind.PATHS, T0 + 2, PATHS),
        StoredFact(M, A, ProbeKind.THROUGHPUT, T0 + 3, FAST),
    ]
    for fact in written:
        store.submit_fact(fact)
    await store.flush_facts()
    store.submit_fact(StoredFact(M, B, ProbeKind.PATHS, T0 + 4, PATHS))
    await store.flush_facts()
    rows = await store.load_facts()
    assert sorted(rows.facts, key=lambda f: f.at) == [
        *written,
        StoredFact(M, B, ProbeKind.PATHS, T0 + 4, PATHS),
    ]
    assert rows.skipped == 0


async def test_facts_are_of_their_vantage(store: Store) -> None:
    store.submit_fact(StoredFact(M, A, ProbeKind.PATHS, T0, PATHS))
    await store.flush_facts()
    assert (await store.load_facts("eu")).facts == []
    assert len((await store.load_facts(store.vantage)).facts) == 1


async def test_a_corrupt_row_is_skipped_and_counted(store: Store) -> None:
    store.submit_fact(StoredFact(M, A, ProbeKind.PATHS, T0, PATHS))
    store.submit_fact(StoredFact(M, B, ProbeKind.PATHS, T0, PATHS))
    await store.flush_facts()
    async with store.engine.begin() as conn:
        await conn.execute(
            text(
                "UPDATE host_facts SET value = '{\"accepted\": 3}' "
                "WHERE host_id = (SELECT id FROM hosts WHERE url = :b)"
            ),
            {"b": B},
        )
    rows = await store.load_facts()
    assert [f.host for f in rows.facts] == [A] and rows.skipped == 1


async def test_a_fact_survives_a_database_fault_and_is_written_after_it(
    store: Store, statement_fault: StatementFault
) -> None:
    def fail(*_: Any) -> None:
        raise OSError("disk I/O error")

    remove: Callable[[], None] = statement_fault(store.engine, fail)
    store.submit_fact(StoredFact(M, A, ProbeKind.THROUGHPUT, T0, FAST))
    with pytest.raises(OSError):
        await store.flush_facts()
    remove()
    await store.flush_facts()
    assert [f.fact for f in (await store.load_facts()).facts] == [FAST]
    assert store.facts_dropped_by == {"unstorable": 0, "rejected": 0, "shutdown": 0}


async def test_a_fact_that_cannot_be_written_is_counted_as_unstorable(store: Store) -> None:
    store.submit_fact(StoredFact(M, A, ProbeKind.PATHS, T0, FAST))
    store.submit_fact(StoredFact(M, A, ProbeKind.THROUGHPUT, float("nan"), FAST))
    assert store.stats.facts_dropped_by_reason["unstorable"] == 2


async def test_the_upkeep_deletes_the_facts_of_retired_members_only(store: Store) -> None:
    await store.record_membership([MembershipChange(T0, M, h, "joined") for h in (A, B)])
    for host in (A, B):
        store.submit_fact(StoredFact(M, host, ProbeKind.PATHS, T0, PATHS))
    await store.flush_facts()
    await store.record_membership([MembershipChange(T0 + 1, M, B, "retired")])
    await store.apply_retention(T0 + 2)
    assert [f.host for f in (await store.load_facts()).facts] == [A]


async def test_reading_facts_when_the_database_fails_raises_store_error(
    store: Store, statement_fault: StatementFault
) -> None:
    def fail(*_: Any) -> None:
        raise OSError("connection reset")

    statement_fault(store.engine, fail)
    with pytest.raises(StoreError, match="reading host facts"):
        await store.load_facts()


async def test_the_writer_retries_in_the_background_until_the_database_works_again(
    store: Store, statement_fault: StatementFault
) -> None:
    def fail(*_: Any) -> None:
        raise OSError("database is locked")

    remove = statement_fault(store.engine, fail)
    errors = store.stats.write_errors
    store.submit_fact(StoredFact(M, A, ProbeKind.PATHS, T0, PATHS))
    await eventually(lambda: store.stats.write_errors > errors, timeout=10, every=0.02)
    remove()

    async def written() -> bool:
        return [f.fact for f in (await store.load_facts()).facts] == [PATHS]

    await eventually(written, timeout=10, every=0.05)
