"""SLOs: the settings, the counts the recorder keeps, the error budget arithmetic, `/v1/slo` and
the families /metrics exports for the burn-rate rules."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from hypothesis import given
from hypothesis import strategies as st

from monitor.config import ConfigError
from monitor.config_load import load_settings
from monitor.core.clock import FakeClock
from monitor.core.host_view import iso
from monitor.core.results import Outcome, ProbeKind, ProbeResult
from monitor.core.slo import Budget, Objectives, budget_left, budget_words
from monitor.core.steps import finish
from monitor.parts.fleet import Fleet
from monitor.parts.recorder import Recorder, health_policy, slo_objectives
from monitor.parts.targets import HOST_WIDE, Targets
from monitor.service import Monitor
from monitor.store import Store
from monitor.web.api import make_app

A = "http://127.0.0.1:1001"
T0 = 1_700_000_000.0
BASE = {"LIBERTAI_MONITOR_ALLOWED_HOSTS": "http://127.0.0.1:*", "LIBERTAI_API_KEY": "k"}


def _env(**settings: str) -> dict[str, str]:
    return BASE | {f"LIBERTAI_MONITOR_{k.upper()}": v for k, v in settings.items()}


def test_the_slo_settings_default_to_99_percent_and_95_percent_within_2_seconds() -> None:
    s = load_settings(environ=BASE)
    assert (s.slo_availability, s.slo_ttft_ms, s.slo_ttft_target) == (0.99, 2000.0, 0.95)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("slo_availability", "1"),
        ("slo_availability", "0"),
        ("slo_availability", "99"),
        ("slo_ttft_target", "1.5"),
        ("slo_ttft_ms", "0"),
        ("slo_ttft_ms", "fast"),
    ],
)
def test_an_slo_setting_out_of_range_is_refused_naming_it(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=f"LIBERTAI_MONITOR_{name.upper()}"):
        load_settings(environ=_env(**{name: value}))


@pytest.mark.subprocess
def test_a_bad_slo_setting_exits_2_with_one_line() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "monitor", "probe-once"],
        env={"LIBERTAI_MONITOR_SLO_AVAILABILITY": "1.01", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "LIBERTAI_MONITOR_SLO_AVAILABILITY" in lines[0]


def _recorder(**settings: str) -> Recorder:
    s = load_settings(environ=_env(**settings))
    fleet = Fleet(s, Targets(s, FakeClock()))
    finish(fleet.apply_listing({"hermes": [A]}, T0))
    return Recorder(fleet, health_policy(s), None, objectives=slo_objectives(s))


def _completion(outcome: Outcome, ttft: float | None = None) -> ProbeResult:
    return ProbeResult("hermes", A, ProbeKind.COMPLETION, outcome, T0, 200, 1.0, ttft, None)


def test_every_probe_of_a_model_counts_toward_availability_good_when_it_succeeds() -> None:
    r = _recorder()
    r.record(ProbeResult("hermes", A, ProbeKind.HEALTH, Outcome.OK, T0, 200))
    r.record(_completion(Outcome.SERVER_ERROR))
    r.record(_completion(Outcome.OK, 100.0))
    assert (r.slo_good[("hermes", "availability")], r.slo_total[("hermes", "availability")]) == (2, 3)


def test_successful_completions_count_toward_ttft_good_within_the_threshold() -> None:
    r = _recorder(slo_ttft_ms="500")
    r.record(_completion(Outcome.OK, 499.0))
    r.record(_completion(Outcome.OK, 500.0))
    r.record(_completion(Outcome.OK, 501.0))
    r.record(_completion(Outcome.TIMEOUT))  # availability's failure, not a slow answer
    assert (r.slo_good[("hermes", "ttft")], r.slo_total[("hermes", "ttft")]) == (2, 3)


def test_host_wide_checks_and_results_taken_in_from_the_leader_count_toward_no_slo() -> None:
    r = _recorder()
    r.record(ProbeResult(HOST_WIDE, A, ProbeKind.AUTH, Outcome.OK, T0, 200))
    r.take_in(_completion(Outcome.OK, 100.0))
    assert not r.slo_total and not r.slo_good


@given(st.integers(0, 10_000), st.floats(0.5, 0.9999))
def test_no_bad_event_leaves_the_whole_budget(total: int, objective: float) -> None:
    assert budget_left(total, total, objective) == 1.0


@given(st.integers(1, 10_000), st.data(), st.floats(0.5, 0.9999))
def test_the_budget_left_is_at_most_whole_and_falls_with_each_bad_event(
    total: int, data: st.DataObject, objective: float
) -> None:
    good = data.draw(st.integers(0, total - 1))
    left = budget_left(good, total, objective)
    assert left < 1.0
    assert budget_left(good + 1, total, objective) > left


def test_the_budget_is_spent_when_bad_events_reach_what_the_objective_allows() -> None:
    assert budget_left(990, 1000, 0.99) == pytest.approx(0.0)
    assert budget_left(995, 1000, 0.99) == pytest.approx(0.5)
    assert budget_left(980, 1000, 0.99) == pytest.approx(-1.0)


async def test_v1_slo_serves_each_models_budgets_and_the_objectives(aiohttp_client: Any) -> None:
    m = Monitor(load_settings(environ=_env(slo_ttft_ms="300")), clock=FakeClock())
    finish(m.fleet.apply_listing({"hermes": [A]}, m.clock.time()))
    for ttft in (100.0, 200.0, 400.0):
        m.recorder.record(_completion(Outcome.OK, ttft))
    m.recorder.record(_completion(Outcome.SERVER_ERROR))
    client: TestClient = await aiohttp_client(make_app(m))  # type: ignore[type-arg]
    resp = await client.get("/v1/slo")
    body = await resp.json()
    assert resp.status == 200
    assert body["objectives"] == {"availability": 0.99, "ttft": {"target": 0.95, "threshold_ms": 300.0}}
    assert {"generated_at", "since", "objectives", "models"} <= set(body)
    assert (body["source"], body["window_days"]) == ("memory", None)  # no database: since start
    hermes = body["models"]["hermes"]
    assert hermes["availability"] == {
        "objective": 0.99,
        "good": 3,
        "total": 4,
        "budget_left": pytest.approx(budget_left(3, 4, 0.99)),
    }
    assert hermes["ttft"]["good"] == 2 and hermes["ttft"]["total"] == 3


async def test_metrics_export_the_slo_counters_and_objectives(aiohttp_client: Any) -> None:
    m = Monitor(load_settings(environ=_env(slo_availability="0.995")), clock=FakeClock())
    finish(m.fleet.apply_listing({"hermes": [A]}, m.clock.time()))
    m.recorder.record(_completion(Outcome.OK, 100.0))
    m.recorder.record(_completion(Outcome.SERVER_ERROR))
    client: TestClient = await aiohttp_client(make_app(m))  # type: ignore[type-arg]
    text = await (await client.get("/metrics")).text()
    assert 'libertai_monitor_slo_total{model="hermes",slo="availability"} 2.0' in text
    assert 'libertai_monitor_slo_good_total{model="hermes",slo="availability"} 1.0' in text
    assert 'libertai_monitor_slo_good_total{model="hermes",slo="ttft"} 1.0' in text
    assert 'libertai_monitor_slo_objective{slo="availability"} 0.995' in text
    assert 'libertai_monitor_slo_objective{slo="ttft"} 0.95' in text


def test_objectives_name_each_slos_target() -> None:
    o = Objectives(0.9, 100.0, 0.8)
    assert (o.target("availability"), o.target("ttft")) == (0.9, 0.8)


def test_the_budget_line_names_each_objectives_share_left() -> None:
    by_slo = {"availability": Budget(0.99, 995, 1000), "ttft": Budget(0.95, 80, 100)}
    assert budget_words(by_slo) == "error budget left: 50%, none (spent) (TTFT)"
    assert budget_words({}) is None


async def test_the_status_page_shows_each_models_error_budget_left(aiohttp_client: Any) -> None:
    m = Monitor(load_settings(environ=BASE), clock=FakeClock())
    finish(m.fleet.apply_listing({"hermes": [A]}, m.clock.time()))
    for _ in range(199):
        m.recorder.record(_completion(Outcome.OK, 100.0))
    m.recorder.record(_completion(Outcome.SERVER_ERROR))  # 1 of the 2 failures 0.99 allows
    finish(m.publisher.publish(force=True))
    client: TestClient = await aiohttp_client(make_app(m, m))  # type: ignore[type-arg]
    page = await (await client.get("/status/hermes")).text()
    assert "error budget left: 50%, 100% (TTFT)" in page


async def test_with_a_database_v1_slo_and_the_page_report_the_stored_30_days(
    aiohttp_client: Any, tmp_path: Any
) -> None:
    store = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'h.db'}")
    await store.upgrade()
    store.start_writer()
    clock = FakeClock(T0)
    m = Monitor(load_settings(environ=BASE), store=store, clock=clock)
    try:
        finish(m.fleet.apply_listing({"hermes": [A]}, T0))
        # Distinct start times: the store keeps one result per (model, host, kind, time).
        for i in range(199):
            store.submit(replace(_completion(Outcome.OK, 100.0), started_at=T0 - i - 1))
        store.submit(_completion(Outcome.SERVER_ERROR))
        await store.flush()
        assert m.budgets is not None
        await m.budgets.refresh()
        finish(m.publisher.publish(force=True))
        client: TestClient = await aiohttp_client(make_app(m, m))  # type: ignore[type-arg]
        body = await (await client.get("/v1/slo")).json()
        assert (body["source"], body["window_days"]) == ("store", 30)
        assert body["since"] == iso(int((T0 - 30 * 86400) // 3600) * 3600)
        assert body["models"]["hermes"]["availability"]["total"] == 200  # none counted in memory
        page = await (await client.get("/status/hermes")).text()
        assert "error budget left: 50%, 100% (TTFT)" in page
    finally:
        await store.close()
