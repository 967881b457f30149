"""The status page's incidents in the database: stored as given, read back by vantage, deleted by
retention with the discovery runs."""

from __future__ import annotations

from monitor.core.results import Outcome
from monitor.store import Store
from monitor.store.incidents import StoredIncident
from tests.store.conftest import T0

A, B = "https://a.libertai.io", "https://b.libertai.io"
DAY = 86400.0


async def test_incidents_come_back_as_stored_oldest_first(store: Store) -> None:
    items = [
        StoredIncident(T0, "down", "m", A, Outcome.TIMEOUT),
        StoredIncident(T0 + 1, "best", "m", B, previous=A),
        StoredIncident(T0 + 2, "best", "m", None, previous=B),
        StoredIncident(T0 + 3, "up", "m", A),
    ]
    await store.record_incidents(items[2:])
    await store.record_incidents(items[:2])
    assert await store.load_incidents(T0) == items
    assert await store.load_incidents(T0 + 2) == items[2:]


async def test_incidents_are_read_by_vantage(store: Store) -> None:
    await store.record_incidents([StoredIncident(T0, "up", "m", A)])
    assert await store.load_incidents(0, vantage="elsewhere") == []
    assert len(await store.load_incidents(0)) == 1


async def test_retention_deletes_incidents_with_the_discovery_runs(store: Store) -> None:
    await store.record_incidents(
        [StoredIncident(T0, "up", "m", A), StoredIncident(T0 + 10 * DAY, "up", "m", B)]
    )
    await store.apply_retention(T0 + 15 * DAY, raw_days=7, rollup_days=10)
    assert [i.host for i in await store.load_incidents(0)] == [B]
