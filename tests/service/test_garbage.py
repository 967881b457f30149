"""The service's state is values without reference cycles: what it drops (a replaced health
value, a retired host) is freed at once, never left for the collector. The runtime freezes what
survives its collections and, at a large size, never walks it whole again (monitor.runtime)."""

from __future__ import annotations

import gc

from monitor.config_load import load_settings
from monitor.core.answer import HOSTS
from monitor.core.clock import FakeClock
from monitor.core.results import Outcome, ProbeKind, ProbeResult
from monitor.core.steps import finish
from monitor.service import Monitor

T0 = 1_700_000_000.0


def _monitor() -> Monitor:
    settings = load_settings(
        environ={
            "LIBERTAI_MONITOR_ALLOWED_HOSTS": "http://127.0.0.1:*",
            "LIBERTAI_API_KEY": "sk-test-0123456789",
            "LIBERTAI_MONITOR_RETIRE_AFTER": "0",
        }
    )
    return Monitor(settings, clock=FakeClock(T0))


def _host(i: int) -> str:
    return f"http://127.0.0.1:{1025 + i}"


def _probe_everything(m: Monitor, hosts: int, at: float) -> None:
    for i in range(hosts):
        ok = i % 3 != 0
        outcome = Outcome.OK if ok else Outcome.CONNECT_ERROR
        for kind in (ProbeKind.HEALTH, ProbeKind.COMPLETION):
            ttft = 120.0 + i if ok and kind is ProbeKind.COMPLETION else None
            m.recorder.record(
                ProbeResult("hermes", _host(i), kind, outcome, at, 200 if ok else None, 1.0, ttft, 300.0)
            )


def test_probing_publishing_and_retiring_hosts_leave_no_cyclic_garbage() -> None:
    m = _monitor()
    finish(m.fleet.apply_listing({"hermes": [_host(i) for i in range(300)], "gemma": [_host(0)]}, T0))
    _probe_everything(m, 300, T0)
    finish(m.publisher.publish(force=True))
    finish(m.snapshot.answer(HOSTS))
    gc.collect()
    gc.disable()
    try:
        for round_ in range(1, 4):  # every value replaced a few times, snapshots swapped
            _probe_everything(m, 300, T0 + 30 * round_)
            finish(m.publisher.publish(force=True))
            finish(m.snapshot.answer(HOSTS, gzipped=True))
        finish(m.fleet.apply_listing({"gemma": [_host(0)]}, T0 + 200))  # 300 hosts retired at once
        finish(m.publisher.publish(force=True))
        cyclic = gc.collect()
    finally:
        gc.enable()
    assert set(m.snapshot.models) == {"gemma"}
    assert cyclic == 0
