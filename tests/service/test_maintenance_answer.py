"""Maintenance windows in the answers: a monitor on a fake clock, fed probe results through its
recorder, reading its windows from a SQLite store as every replica does."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from monitor.config_load import load_settings
from monitor.core.answer import HOSTS, AnswerKey
from monitor.core.clock import FakeClock
from monitor.core.host_view import iso
from monitor.core.results import Outcome, ProbeKind, ProbeResult
from monitor.core.steps import finish
from monitor.parts.windows import REFRESH_EVERY_S
from monitor.service import Monitor
from monitor.store import Store

A, B = "http://127.0.0.1:1001", "http://127.0.0.1:1002"


class _Fed:
    def __init__(self, store: Store) -> None:
        settings = load_settings(
            environ={"LIBERTAI_MONITOR_ALLOWED_HOSTS": "http://127.0.0.1:*", "LIBERTAI_API_KEY": "k"}
        )
        self.clock = FakeClock()
        self.store = store
        self.monitor = Monitor(settings, store=store, clock=self.clock)
        finish(self.monitor.fleet.apply_listing({"hermes": [A, B]}, self.clock.time()))

    def completions(self, host: str, ttft_ms: float, n: int = 3) -> None:
        for _ in range(n):
            at = self.clock.time()
            self.monitor.recorder.record(
                ProbeResult(
                    "hermes", host, ProbeKind.COMPLETION, Outcome.OK, at, 200, 1.0, ttft_ms, ttft_ms + 5
                )
            )
            self.clock.spend(1.0)

    def answer(self, key: AnswerKey) -> dict[str, Any]:
        finish(self.monitor.publisher.publish(force=True))
        sent = finish(self.monitor.snapshot.answer(key))
        assert sent is not None
        data: dict[str, Any] = json.loads(sent.body)
        return data

    def routed(self) -> set[str]:
        """Every host a client may be sent to: best, fallbacks, candidates."""
        best = self.answer(AnswerKey.best("hermes"))
        listed = self.answer(AnswerKey.best())["models"]["hermes"]
        return (
            {best["host"], *best["fallbacks"], *(c["url"] for c in best["candidates"])}
            | {listed["host"], *listed["fallbacks"], *(c["url"] for c in listed["candidates"])}
        ) - {None}

    def host_entry(self, url: str) -> dict[str, Any]:
        return next(h for h in self.answer(HOSTS)["hosts"] if h["url"] == url)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    s = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'monitor.db'}")
    await s.upgrade()
    yield s
    await s.close()


async def test_a_host_in_maintenance_is_never_routed_to_while_its_state_stays_known(store: Store) -> None:
    fed = _Fed(store)
    fed.completions(A, 100.0)
    fed.completions(B, 400.0)
    t0 = fed.clock.time()
    await store.add_window(A, None, t0 + 60, t0 + 600, "kernel upgrade")
    await fed.monitor.maintenance.refresh()
    assert fed.answer(AnswerKey.best("hermes"))["host"] == A  # the window has not started
    assert fed.host_entry(A)["maintenance"] is None

    fed.clock.spend(60)
    fed.completions(A, 100.0)  # still probed, and answering
    assert fed.routed() == {B}
    entry = fed.host_entry(A)
    assert entry["state"] == "up"
    assert entry["maintenance"] == {"reason": "kernel upgrade", "until": iso(t0 + 600)}


async def test_a_host_returns_to_routing_when_its_window_ends(store: Store) -> None:
    fed = _Fed(store)
    fed.completions(A, 100.0)
    fed.completions(B, 400.0)
    t0 = fed.clock.time()
    await store.add_window(None, "hermes", t0, t0 + 60, "redeploy")
    await store.add_window(A, None, t0, t0 + 120, "kernel upgrade")
    await fed.monitor.maintenance.refresh()
    assert fed.routed() == set()  # every host of the model is drained: none to send to
    fed.clock.spend(60)
    assert fed.routed() == {B}
    fed.clock.spend(60)
    fed.completions(A, 100.0)
    assert fed.routed() == {A, B}
    assert fed.host_entry(A)["maintenance"] is None


async def test_a_window_added_to_the_database_is_in_force_after_the_next_refresh(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    fed = _Fed(store)
    fed.completions(A, 100.0)
    fed.completions(B, 400.0)
    windows = fed.monitor.maintenance
    read, refresh = asyncio.Event(), windows.refresh

    async def refreshed() -> None:
        await refresh()
        read.set()

    async def next_refresh() -> None:
        read.clear()
        await fed.clock.advance(REFRESH_EVERY_S)
        await asyncio.wait_for(read.wait(), 10)  # the database read runs in a thread

    monkeypatch.setattr(windows, "refresh", refreshed)
    refreshing = asyncio.create_task(windows.run_forever())
    try:
        window = await store.add_window(A, None, fed.clock.time(), fed.clock.time() + 600, "r")
        assert A in fed.routed()
        await next_refresh()
        assert fed.routed() == {B}
        await store.end_window(window, fed.clock.time())
        await next_refresh()
        assert fed.routed() == {A, B}
    finally:
        refreshing.cancel()
        await asyncio.gather(refreshing, return_exceptions=True)
