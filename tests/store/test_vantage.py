"""Vantages: several monitors (places) share one database; each writes and reads its own."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text

from monitor.core.membership import MembershipChange
from monitor.core.results import Outcome, ProbeKind
from monitor.store import Store, VantageInfo
from monitor.store.migrate import upgrade_with_engine

from .conftest import T0, MakeResult

H = int(T0)
A, B = "https://a.libertai.io", "https://b.libertai.io"


@pytest.fixture
async def eu(store: Store, db_url: str) -> AsyncIterator[Store]:
    """A second monitor, vantage "eu", on the database of `store` (vantage "default")."""
    s = await Store.open(db_url, vantage="eu", retry_initial_s=0.05, retry_max_s=0.2)
    s.start_writer()
    yield s
    await s.close(grace_s=2)


async def test_each_store_reads_its_own_vantage_by_default(
    store: Store, eu: Store, make_result: MakeResult
) -> None:
    store.submit(make_result(T0, outcome=Outcome.OK))
    eu.submit(make_result(T0, outcome=Outcome.TIMEOUT))
    await store.flush()
    await eu.flush()
    assert [r.outcome for r in await store.load_recent_results(0)] == [Outcome.OK]
    assert [r.outcome for r in await eu.load_recent_results(0)] == [Outcome.TIMEOUT]
    assert [e for _, (_, _, e, _, _) in await eu.load_recent_evidence(0)] == [Outcome.TIMEOUT]


async def test_another_vantage_is_read_by_its_name(store: Store, eu: Store, make_result: MakeResult) -> None:
    eu.submit(make_result(T0, outcome=Outcome.TIMEOUT))
    await eu.flush()
    assert [r.outcome for r in await store.load_recent_results(0, vantage="eu")] == [Outcome.TIMEOUT]
    assert await store.load_recent_results(0, vantage="nowhere") == []


async def test_best_hosts_and_members_are_kept_per_vantage(store: Store, eu: Store) -> None:
    await store.save_best("llama-3", A, T0)
    await eu.save_best("llama-3", B, T0)
    await store.record_membership([MembershipChange(T0, "llama-3", A, "joined")])
    await eu.record_membership([MembershipChange(T0, "llama-3", B, "joined")])
    assert await store.load_best() == {"llama-3": A}
    assert await eu.load_best() == {"llama-3": B}
    assert await store.load_best(vantage="eu") == {"llama-3": B}
    assert await store.load_members() == {"llama-3": {A}}
    assert await eu.load_members() == {"llama-3": {B}}


async def test_rollups_and_history_are_per_vantage(store: Store, eu: Store, make_result: MakeResult) -> None:
    for i in range(10):
        store.submit(make_result(H + i * 60, kind=ProbeKind.COMPLETION, ttft_ms=100.0))
        eu.submit(make_result(H + i * 60, kind=ProbeKind.COMPLETION, outcome=Outcome.TIMEOUT))
    await store.flush()
    await eu.flush()
    assert await store.rollup(H + 7200) == 2  # one hour of one host, for each vantage
    [here] = await store.history("llama-3", A, since=H, until=H + 3600, step_s=3600)
    [there] = await store.history("llama-3", A, since=H, until=H + 3600, step_s=3600, vantage="eu")
    assert (here.probes, here.availability, here.ttft_ms_p50) == (10, 1.0, 100.0)
    assert (there.probes, there.availability, there.ttft_ms_p50) == (10, 0.0, None)
    assert await eu.history("llama-3", A, since=H, until=H + 3600, step_s=3600) == [there]


async def test_retention_is_applied_to_every_vantage(
    store: Store, eu: Store, make_result: MakeResult
) -> None:
    store.submit(make_result(H))
    eu.submit(make_result(H))
    await store.flush()
    await eu.flush()
    now = H + 30 * 86400
    await store.rollup(now)
    assert await store.apply_retention(now, raw_days=7) == 2
    assert await store.load_recent_results(0) == []
    assert await eu.load_recent_results(0) == []


async def test_vantages_lists_each_with_its_last_result_time(
    store: Store, eu: Store, make_result: MakeResult
) -> None:
    assert await store.vantages() == []
    store.submit(make_result(T0 + 5))
    store.submit(make_result(T0 + 1, host=B))
    eu.submit(make_result(T0 + 9))
    await store.flush()
    await eu.flush()
    store.submit(make_result(T0 + 2, model="qwen"))  # older than the newest: does not move it back
    await store.flush()
    assert await store.vantages() == [VantageInfo("default", T0 + 5), VantageInfo("eu", T0 + 9)]


@pytest.mark.parametrize("name", ["", "a b", "x" * 65, "-leading-dash", "bad-\ud800-id"])
async def test_an_invalid_vantage_name_is_refused(db_url: str, name: str) -> None:
    with pytest.raises(ValueError, match="invalid vantage name"):
        await Store.open(db_url, vantage=name)


async def test_a_database_of_the_previous_schema_upgrades_in_place_as_the_default_vantage(
    db_url: str, make_result: MakeResult
) -> None:
    old = await Store.open(db_url)
    await upgrade_with_engine(old.engine, "0001")
    async with old.engine.begin() as conn:
        await conn.execute(text("INSERT INTO models (id, name) VALUES (1, 'llama-3')"))
        await conn.execute(text(f"INSERT INTO hosts (id, url) VALUES (1, '{A}')"))
        await conn.execute(
            text(
                "INSERT INTO probe_results (model_id, host_id, at, kind, outcome, status, total_ms) "
                f"VALUES (1, 1, {H * 1000}, 0, 0, 200, 40.0)"
            )
        )
        await conn.execute(
            text(f"INSERT INTO best_hosts (model_id, host_id, since) VALUES (1, 1, {H * 1000})")
        )
        await conn.execute(text(f"INSERT INTO rollup_state (id, rolled_until) VALUES (1, {H})"))
    await old.close()

    store = await Store.open(db_url)
    await store.upgrade()
    store.start_writer()
    try:
        [r] = await store.load_recent_results(0)
        assert (r.model, r.host, r.started_at, r.total_ms) == ("llama-3", A, T0, 40.0)
        assert await store.load_best() == {"llama-3": A}
        assert await store.vantages() == [VantageInfo("default", T0)]
        store.submit(make_result(T0 + 1))  # the writer knows the old rows' key
        await store.flush()
        assert len(await store.load_recent_results(0)) == 2
    finally:
        await store.close()
