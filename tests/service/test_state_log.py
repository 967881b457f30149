"""State-change lines have a budget: a fleet that fails at once writes a bounded number of "host
down" lines and one summary per window, while every change still reaches the subscribers."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

from structlog.testing import capture_logs

from monitor.config import Settings
from monitor.config_load import load_settings
from monitor.core.clock import FakeClock
from monitor.core.health import HostHealth
from monitor.core.results import HostState, Outcome, ProbeKind, ProbeResult
from monitor.core.steps import finish
from monitor.parts.fleet import Fleet
from monitor.parts.recorder import (
    STATE_LINES_PER_WINDOW,
    STATE_LOG_WINDOW_S,
    Recorder,
    StateLogBudget,
    health_policy,
)
from monitor.parts.targets import Targets
from monitor.service import Monitor

T0 = 1_700_000_000.0


def _settings() -> Settings:
    return load_settings(
        environ={"LIBERTAI_MONITOR_ALLOWED_HOSTS": "http://127.0.0.1:*", "LIBERTAI_API_KEY": "k"}
    )


def _host(i: int) -> str:
    return f"http://127.0.0.1:{1000 + i}"


def _refused(i: int, at: float) -> ProbeResult:
    return ProbeResult("hermes", _host(i), ProbeKind.HEALTH, Outcome.CONNECT_ERROR, at)


def _fleet(hosts: int) -> tuple[Fleet, Recorder]:
    settings = _settings()
    fleet = Fleet(settings, Targets(settings, FakeClock()))
    finish(fleet.apply_listing({"hermes": [_host(i) for i in range(hosts)]}, T0))
    return fleet, Recorder(fleet, health_policy(settings), None)


def _down_everywhere(recorder: Recorder, hosts: int, at: float) -> None:
    """Refused probes until every host is down (however many the policy needs)."""
    for n in range(10):
        for i in range(hosts):
            recorder.record(_refused(i, at + n * 0.001))


def _events(logs: Sequence[Mapping[str, Any]], name: str) -> list[Mapping[str, Any]]:
    return [e for e in logs if e["event"] == name]


def test_a_fleet_that_fails_at_once_logs_the_budget_then_one_summary() -> None:
    fleet, recorder = _fleet(STATE_LINES_PER_WINDOW * 3)
    changes: list[HostHealth] = []
    recorder.on_state_change(lambda _before, after, _at: changes.append(after))
    with capture_logs() as logs:
        _down_everywhere(recorder, STATE_LINES_PER_WINDOW * 3, T0)
        recorder.summarise_state_log(T0 + 1 + STATE_LOG_WINDOW_S)
    assert len(changes) == STATE_LINES_PER_WINDOW * 3  # every change still reaches the subscribers
    assert all(h.state is HostState.DOWN for h in fleet.health.values())
    assert len(_events(logs, "host down")) == STATE_LINES_PER_WINDOW
    (summary,) = _events(logs, "host state changes not logged")
    assert summary["changes"] == STATE_LINES_PER_WINDOW * 2 and summary["by_state"] == {"down": 200}


def test_no_summary_before_the_window_is_over() -> None:
    _, recorder = _fleet(STATE_LINES_PER_WINDOW + 5)
    with capture_logs() as logs:
        _down_everywhere(recorder, STATE_LINES_PER_WINDOW + 5, T0)
        recorder.summarise_state_log(T0 + STATE_LOG_WINDOW_S / 2)
    assert _events(logs, "host state changes not logged") == []


def test_changes_are_logged_again_once_a_summary_closed_the_window() -> None:
    budget = StateLogBudget(lines=2, window_s=10.0)
    assert [budget.admit("down", T0 + i) for i in range(3)] == [True, True, False]
    assert budget.admit("up", T0 + 11) is False  # held until the summary is written
    assert budget.summary(T0 + 12) == {"down": 1, "up": 1}
    assert budget.admit("down", T0 + 12) is True


def test_a_quiet_window_starts_a_new_budget() -> None:
    budget = StateLogBudget(lines=2, window_s=10.0)
    assert [budget.admit("down", T0), budget.admit("down", T0 + 1)] == [True, True]
    assert budget.admit("up", T0 + 10) is True and budget.summary(T0 + 30) is None


async def test_the_running_service_sums_up_a_burst_on_its_clock() -> None:
    clock = FakeClock(T0)
    monitor = Monitor(_settings(), clock=clock)
    hosts = STATE_LINES_PER_WINDOW + 7
    finish(monitor.fleet.apply_listing({"hermes": [_host(i) for i in range(hosts)]}, T0))
    with capture_logs() as logs:
        task = asyncio.create_task(monitor._summarise_state_log())
        _down_everywhere(monitor.recorder, hosts, T0)
        await clock.advance(STATE_LOG_WINDOW_S * 2)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    (summary,) = _events(logs, "host state changes not logged")
    assert summary["changes"] == 7


async def test_what_the_budget_held_back_is_summed_up_at_stop() -> None:
    monitor = Monitor(_settings(), clock=FakeClock(T0))
    hosts = STATE_LINES_PER_WINDOW + 3
    finish(monitor.fleet.apply_listing({"hermes": [_host(i) for i in range(hosts)]}, T0))
    with capture_logs() as logs:
        _down_everywhere(monitor.recorder, hosts, T0)
        await monitor.stop()
    (summary,) = _events(logs, "host state changes not logged")
    assert summary["changes"] == 3
