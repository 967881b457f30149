"""Another vantage's answers (`?vantage=NAME`) drain the hosts in maintenance as this one's do:
its results are read from the database (SQLite here, as on PostgreSQL), its answers built here."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from monitor.config_load import load_settings
from monitor.core.answer import AnswerKey
from monitor.core.clock import FakeClock
from monitor.core.membership import MembershipChange
from monitor.core.results import Outcome, ProbeKind, ProbeResult
from monitor.core.snapshot import ServedBy
from monitor.core.steps import finish
from monitor.ha.vantages import Vantages
from monitor.parts.recorder import health_policy
from monitor.parts.windows import MaintenanceWindows
from monitor.store import Store

A, B = "https://a.libertai.io", "https://b.libertai.io"
T0 = 1_700_000_000.0


@pytest.fixture
async def stores(tmp_path: Path) -> AsyncIterator[tuple[Store, Store]]:
    """This vantage's store ("default") and vantage "eu"'s, on one database."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'monitor.db'}"
    here = await Store.open(url)
    await here.upgrade()
    eu = await Store.open(url, vantage="eu")
    eu.start_writer()
    yield here, eu
    await eu.close(grace_s=2)
    await here.close()


async def _eu_sees_both_hosts_up(eu: Store) -> None:
    await eu.record_membership([MembershipChange(T0, "hermes", h, "joined") for h in (A, B)])
    for i in range(3):
        for host, ttft in ((A, 100.0), (B, 400.0)):
            at = T0 + i
            eu.submit(
                ProbeResult("hermes", host, ProbeKind.COMPLETION, Outcome.OK, at, 200, 1.0, ttft, ttft + 5)
            )
    await eu.flush()


async def test_a_host_in_maintenance_is_never_routed_to_in_another_vantages_answers(
    stores: tuple[Store, Store],
) -> None:
    here, eu = stores
    await _eu_sees_both_hosts_up(eu)
    await here.add_window(A, None, T0, T0 + 600, "kernel upgrade")
    clock = FakeClock(T0 + 10)
    windows = MaintenanceWindows(here, clock)
    await windows.refresh()
    settings = load_settings(environ={"LIBERTAI_API_KEY": "k"})
    vantages = Vantages(
        here, settings, health_policy(settings), clock, lambda: ServedBy("default", "leader"), windows=windows
    )
    snapshot = await vantages.snapshot("eu")
    sent = finish(snapshot.answer(AnswerKey.best("hermes")))
    assert sent is not None
    best = json.loads(sent.body)
    routed = {best["host"], *best["fallbacks"], *(c["url"] for c in best["candidates"])}
    assert routed == {B}
