"""`probe-once`: one discovery and one probe of every target; a failure is confirmed, on the clock."""

from __future__ import annotations

import asyncio

from monitor.config_load import load_settings
from monitor.core.clock import FakeClock
from monitor.core.results import HostState, Outcome, ProbeKind, ProbeResult
from monitor.core.snapshot import DiscoveryStatus
from monitor.core.steps import finish
from monitor.parts.best_hosts import BestHosts, ranking_policy
from monitor.parts.fleet import Fleet
from monitor.parts.probe_once import probe_once
from monitor.parts.publisher import Publisher
from monitor.parts.recorder import Recorder, health_policy
from monitor.parts.target_runner import TargetRunner
from monitor.parts.targets import Targets

GOOD, BAD = "http://127.0.0.1:1001", "http://127.0.0.1:1002"


class _Listing:
    def __init__(self, fleet: Fleet, clock: FakeClock) -> None:
        self._fleet, self._clock = fleet, clock
        self.status = DiscoveryStatus()
        self.key_outcome: Outcome | None = None

    async def run(self) -> None:
        finish(self._fleet.apply_listing({"hermes": [GOOD, BAD]}, self._clock.time()))


class _Prober:
    """GOOD answers, BAD times out; every call is noted with the clock's time."""

    def __init__(self, clock: FakeClock) -> None:
        self._clock = clock
        self.calls: list[tuple[str, float]] = []

    async def auth(self, host: str, model: str) -> ProbeResult:
        raise AssertionError("no key: no auth check")

    async def probe(self, kind: ProbeKind, host: str, model: str, *, reasoning: bool = False) -> ProbeResult:
        self.calls.append((host, self._clock.monotonic()))
        at = self._clock.time()
        if host == GOOD:
            return ProbeResult(model, host, kind, Outcome.OK, at, 200, 1.0, None, 9.0)
        return ProbeResult(model, host, kind, Outcome.TIMEOUT, at)


async def test_a_failing_host_is_reprobed_after_the_confirm_delay_and_reported_down() -> None:
    settings = load_settings(
        environ={
            "LIBERTAI_MONITOR_ALLOWED_HOSTS": "http://127.0.0.1:*",
            "LIBERTAI_MONITOR_CONFIRM_DELAY": "2",
        }
    )
    clock = FakeClock()
    targets = Targets(settings, clock)
    fleet = Fleet(settings, targets)
    recorder = Recorder(fleet, health_policy(settings), None)
    prober = _Prober(clock)
    listing = _Listing(fleet, clock)
    publisher = Publisher(fleet, BestHosts(ranking_policy(settings)), listing, clock)
    runner = TargetRunner(prober, fleet, recorder, targets, settings.confirm_delay)

    once = asyncio.create_task(
        probe_once(settings, clock, listing, fleet, runner, lambda: finish(publisher.publish(force=True)))
    )
    await clock.advance(1.9)
    assert sorted(prober.calls) == [(GOOD, 0.0), (BAD, 0.0)] and not once.done()
    await clock.advance(0.2)
    await once
    assert sorted(prober.calls) == [(GOOD, 0.0), (BAD, 0.0), (BAD, 2.0)]
    hosts = {h.url: h for h in publisher.snapshot.models["hermes"].hosts}
    assert hosts[BAD].state is HostState.DOWN and hosts[BAD].reason is Outcome.TIMEOUT
    assert hosts[GOOD].samples == 1
