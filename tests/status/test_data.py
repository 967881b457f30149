"""The page's history read from a real store: hours rolled up, the current hour from raw results,
days summed over 90 days."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from monitor.core.keys import HostKey
from monitor.core.results import Outcome, ProbeKind, ProbeResult
from monitor.slices import run_in_slices
from monitor.store import Store
from monitor.web.status import data
from monitor.web.status.data import HistoryReader
from monitor.web.status.history import DAY, HOUR, day_start
from tests.turns import Turns

T0 = 1_699_963_200.0  # 2023-11-14 12:00 UTC: an hour boundary in the middle of a day
M, H = "llama-3", "https://a.libertai.io"


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    s = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'h.db'}")
    await s.upgrade()
    s.start_writer()
    yield s
    await s.close(grace_s=2)


def _result(
    at: float, kind: ProbeKind, outcome: Outcome = Outcome.OK, ttft: float | None = None
) -> ProbeResult:
    return ProbeResult(M, H, kind, outcome, at, 200, 1.0, ttft, 40.0)


async def _fill(store: Store, results: list[ProbeResult]) -> None:
    for r in results:
        store.submit(r)
    await store.flush()


async def test_rolled_up_hours_and_the_current_hour_are_both_shown(store: Store) -> None:
    await _fill(
        store,
        [
            _result(T0 + 10, ProbeKind.COMPLETION, ttft=300.0),
            _result(T0 + 20, ProbeKind.HEALTH, Outcome.TIMEOUT),
            _result(T0 + HOUR + 10, ProbeKind.COMPLETION, ttft=100.0),
        ],
    )
    await store.rollup(T0 + HOUR + 200)  # rolls up the first hour only
    history = await HistoryReader(store.engine).read(T0 + HOUR + 300)
    hours = history.hourly[HostKey(M, H)]
    first, current = hours[T0], hours[T0 + HOUR]
    assert (first.probes, first.ok, first.ttft_ms_p50) == (2, 1, 300.0)
    assert (current.probes, current.ok, current.ttft_ms_p50) == (1, 1, 100.0)


async def test_a_day_sums_its_rolled_up_and_raw_hours(store: Store) -> None:
    await _fill(
        store,
        [
            _result(T0 + 10, ProbeKind.HEALTH),
            _result(T0 + 20, ProbeKind.HEALTH, Outcome.SERVER_ERROR),
            _result(T0 + HOUR + 10, ProbeKind.HEALTH),
        ],
    )
    await store.rollup(T0 + HOUR + 200)
    history = await HistoryReader(store.engine).read(T0 + HOUR + 300)
    day = history.daily[HostKey(M, H)][day_start(T0)]
    assert (day.probes, day.ok) == (3, 2)


async def test_days_older_than_a_day_come_from_the_roll_ups(store: Store) -> None:
    old = T0 - 3 * DAY
    await _fill(store, [_result(old + 10, ProbeKind.COMPLETION, ttft=200.0)])
    await store.rollup(T0)
    history = await HistoryReader(store.engine).read(T0 + 60)
    assert HostKey(M, H) not in history.hourly
    day = history.daily[HostKey(M, H)][day_start(old)]
    assert (day.probes, day.ok, day.ttft_ms_p50) == (1, 1, 200.0)


async def test_unsupported_answers_do_not_count_as_probes(store: Store) -> None:
    await _fill(
        store, [_result(T0 + 10, ProbeKind.AUTH, Outcome.UNSUPPORTED), _result(T0 + 20, ProbeKind.HEALTH)]
    )
    history = await HistoryReader(store.engine).read(T0 + 60)
    assert history.hourly[HostKey(M, H)][T0].probes == 1


async def test_each_read_is_a_new_version(store: Store) -> None:
    reader = HistoryReader(store.engine)
    first = await reader.read(T0)
    second = await reader.read(T0 + 1)
    assert second.version > first.version


async def test_a_large_history_is_read_while_the_loop_keeps_turning(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    hosts = [f"https://h{i}.libertai.io" for i in range(3_000)]
    for i, host in enumerate(hosts):
        store.submit(
            ProbeResult(M, host, ProbeKind.HEALTH, Outcome.OK, T0 + 10 + i * 0.001, 200, 1.0, None, 40.0)
        )
    await store.flush()
    monkeypatch.setattr(data, "run_in_slices", lambda work: run_in_slices(work, 0.0))
    with Turns() as turns:
        history = await HistoryReader(store.engine).read(T0 + 300)
    assert {pair[1] for pair in history.hourly} == set(hosts)
    assert all(b.probes == 1 for hours in history.hourly.values() for b in hours.values())
    assert turns.count >= 3 * 3_000 // 2_000  # names, rows and buckets: a turn every few thousand
