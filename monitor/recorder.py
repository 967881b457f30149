"""Taking in probe results: count them, hand them to the store's writer, update the fleet's health.

The state machine is `health.apply`'s; this module applies it to the right entries (a host's auth
check counts for every model it serves), logs one line per state change, and says when a failure
should be confirmed at once by another probe.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from monitor.config import Settings
from monitor.fleet import Fleet
from monitor.health import HealthPolicy, HostHealth, apply, needs_confirmation
from monitor.logging import get_logger
from monitor.ports import ResultSink
from monitor.results import HostState, ProbeKind, ProbeResult

log = get_logger("monitor.service")  # the service's parts log under one name, as before the split

StateSubscriber = Callable[[HostHealth, HostHealth, float], None]  # (before, after, at)
ProbeCounts = Counter[tuple[str, str, str, str]]  # (model, host, kind, outcome) -> probes


def health_policy(settings: Settings) -> HealthPolicy:
    return HealthPolicy(
        unhealthy_threshold=settings.unhealthy_threshold,
        healthy_threshold=settings.healthy_threshold,
        window=settings.window,
        ejection_base_s=settings.ejection_time,
        ejection_max_s=settings.ejection_max_time,
    )


class ProbeRecorder:
    def __init__(self, fleet: Fleet, policy: HealthPolicy, sink: ResultSink | None) -> None:
        self._fleet = fleet
        self._policy = policy
        self._sink = sink
        self.counts: ProbeCounts = Counter()
        self._on_state: list[StateSubscriber] = []

    def on_state_change(self, subscriber: StateSubscriber) -> None:
        """Call `subscriber(before, after, at)` whenever a host's state changes."""
        self._on_state.append(subscriber)

    def record(self, result: ProbeResult) -> bool:
        """Take in one probe result: store it and update health. True when the failure it reports
        should be confirmed at once by another probe (detect fast, before a whole interval)."""
        self.counts[(result.model, result.host, result.kind.value, result.outcome.value)] += 1
        if self._sink is not None:
            self._sink.submit(result)
        return self.take_in(result)

    def take_in(self, result: ProbeResult) -> bool:
        """Update health with a result (this process's own or, as a follower, the leader's read
        back from the database): neither counted nor stored. True as for `record`."""
        if result.kind is ProbeKind.AUTH:
            self._fan_out_auth(result)
            return False
        key = (result.model, result.host)
        before = self._fleet.health.get(key)
        if before is None:
            return False  # the host was retired while the probe ran
        after = apply(before, result, self._policy)
        self._fleet.update(key, after)
        if after.state is not before.state or after.reason is not before.reason:
            self._changed(before, after, result.started_at)
        return not result.ok and needs_confirmation(after, self._policy)

    def _fan_out_auth(self, result: ProbeResult) -> None:
        """The host auth check is per host: it counts for every model the host serves."""
        host = result.host
        for model in self._fleet.models_of(host):
            h = self._fleet.health.get((model, host))
            if h is not None and h.trusted:
                after = apply(h, replace(result, model=model), self._policy)
                self._fleet.update((model, host), after)
                if after.state is not h.state:
                    self._changed(h, after, result.started_at)

    def _changed(self, before: HostHealth, after: HostHealth, at: float) -> None:
        if after.state is before.state:
            # Still down, failing in another way: not a new event (a host that alternates between
            # two failures would otherwise log "host down" on every probe).
            log.debug(
                "host failure reason changed",
                model=after.model,
                host=after.host,
                reason=after.reason.value,
                previous_reason=before.reason.value,
            )
            return
        _log_state(before, after)
        for subscriber in self._on_state:
            subscriber(before, after, at)


def _log_state(before: HostHealth, after: HostHealth) -> None:
    fields: dict[str, Any] = {
        "model": after.model,
        "host": after.host,
        "state": after.state.value,
        "previous": before.state.value,
        "reason": after.reason.value,
    }
    if after.state is HostState.DOWN:
        log.warning("host down", **fields)
    elif after.state is HostState.UP:
        log.info("host up", **fields)
    else:
        log.debug("host state changed", **fields)
