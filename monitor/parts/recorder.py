"""Taking in probe results: count them, hand them to the store's writer, update the fleet's health.

The state machine is `health.apply`'s; this module applies it to the right entries (a host's auth
check counts for every model it serves), logs one line per state change, and says when a failure
should be confirmed at once by another probe.

A throughput probe's result is not health evidence: it is neither counted nor stored as a result,
and changes no state. The last measurement of each (model, host) is kept in `throughput`, where the
snapshot's builder reads it. An identity probe's result likewise goes to `identities`
(`monitor.parts.identities`), and what a paths probe learnt to `paths` (`monitor.core.paths`). What
is kept of these three is a host fact (`monitor.core.host_facts`): the probing process hands each to
the `FactSink` (the store's `host_facts`), and a follower or another vantage's answers take them
back in with `take_fact`. Every answer to the key goes to the `KeyWatch`, which says when the
monitor's own key is blocked.

State-change lines have a budget (`StateLogBudget`): a large fleet that goes down at once would
write tens of thousands of "host down" lines, which bury everything else in the log and cost the
loop the time to format them. Past the budget the changes are
counted and summed up in one line per window; every change still reaches the subscribers (the
status page's incidents), the database and the answers.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from monitor.config import Settings
from monitor.core.health import HealthPolicy, HostHealth, apply, needs_confirmation
from monitor.core.host_facts import Fact, StoredFact, fact_of
from monitor.core.identity import Fingerprint
from monitor.core.keys import HostKey
from monitor.core.paths import Paths
from monitor.core.results import HostState, ProbeKind, ProbeResult
from monitor.core.slo import Objectives, SloCounts, events
from monitor.core.steps import mapped
from monitor.core.throughput import Throughput
from monitor.logging import get_logger
from monitor.parts.fleet import SYNC_STEP, Fleet
from monitor.parts.identities import Identities
from monitor.parts.key_watch import KeyWatch
from monitor.parts.ports import FactSink, ResultSink

# Results kept beside health, never evidence of it: not counted, not stored as results.
_NOT_EVIDENCE = frozenset({ProbeKind.THROUGHPUT, ProbeKind.IDENTITY, ProbeKind.PATHS})

log = get_logger("monitor.service")  # the service's parts log under one name

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


def slo_objectives(settings: Settings) -> Objectives:
    return Objectives(settings.slo_availability, settings.slo_ttft_ms, settings.slo_ttft_target)


# At most this many state-change lines per window; beyond them, one summary line per window.
STATE_LINES_PER_WINDOW = 100
STATE_LOG_WINDOW_S = 10.0


@dataclass
class StateLogBudget:
    """How many state-change lines may still be written in the current window (pure: the time is
    the caller's), and what was held back beyond them, by new state."""

    lines: int = STATE_LINES_PER_WINDOW
    window_s: float = STATE_LOG_WINDOW_S
    _start: float = float("-inf")
    _written: int = 0
    held: Counter[str] = field(default_factory=Counter)

    def admit(self, state: str, at: float) -> bool:
        """True when a change to `state` at `at` may be logged; else it is counted as held."""
        if at - self._start >= self.window_s and not self.held:
            self._start, self._written = at, 0
        if self._written < self.lines and not self.held:
            self._written += 1
            return True
        self.held[state] += 1
        return False

    def summary(self, at: float) -> Counter[str] | None:
        """Once the window that held changes back is over: their counts (and a new window)."""
        if not self.held or at - self._start < self.window_s:
            return None
        held, self.held = self.held, Counter()
        self._start, self._written = at, 0
        return held


class Recorder:
    def __init__(
        self,
        fleet: Fleet,
        policy: HealthPolicy,
        sink: ResultSink | None,
        state_log: StateLogBudget | None = None,
        objectives: Objectives | None = None,
        identities: Identities | None = None,
        key_watch: KeyWatch | None = None,
        facts: FactSink | None = None,
    ) -> None:
        self._fleet = fleet
        self._facts = facts
        self._policy = policy
        self._sink = sink
        self.counts: ProbeCounts = Counter()
        # Good and all events of each (model, objective), counted with `counts`.
        self.objectives = Objectives() if objectives is None else objectives
        self.slo_good: SloCounts = Counter()
        self.slo_total: SloCounts = Counter()
        self.throughput: dict[HostKey, Throughput] = {}  # the last measurement of each (model, host)
        self.identities = Identities(fleet) if identities is None else identities
        self.paths: dict[HostKey, Paths] = {}  # the API paths each (model, host) accepts and refuses
        self.key_watch = KeyWatch() if key_watch is None else key_watch
        self._on_state: list[StateSubscriber] = []
        self._state_log = StateLogBudget() if state_log is None else state_log

    def on_state_change(self, subscriber: StateSubscriber) -> None:
        """Call `subscriber(before, after, at)` whenever a host's state changes."""
        self._on_state.append(subscriber)

    def record(self, result: ProbeResult) -> bool:
        """Take in one probe result: store it and update health. True when the failure it reports
        should be confirmed at once by another probe (detect fast, before a whole interval)."""
        if result.kind in _NOT_EVIDENCE:
            confirm = self.take_in(result)
            self._keep_fact(result)
            return confirm
        self.counts[(result.model, result.host, result.kind.value, result.outcome.value)] += 1
        for slo, good in events(result, self.objectives):
            self.slo_total[(result.model, slo)] += 1
            self.slo_good[(result.model, slo)] += good
        if self._sink is not None:
            self._sink.submit(result)
        return self.take_in(result)

    def take_in(self, result: ProbeResult) -> bool:
        """Update health with a result (this process's own or, as a follower, the leader's read
        back from the database): neither counted nor stored. True as for `record`."""
        if result.kind is not ProbeKind.HEALTH:
            self.key_watch.note(result.kind, result.outcome, result.detail, result.host)
        if result.kind is ProbeKind.THROUGHPUT:
            self._measured(result)
            return False
        if result.kind is ProbeKind.IDENTITY:
            self.identities.take(result)
            return False
        if result.kind is ProbeKind.PATHS:
            self._learned(result)
            return False
        if result.kind is ProbeKind.AUTH:
            self._fan_out_auth(result)
            return False
        key = HostKey(result.model, result.host)
        before = self._fleet.health.get(key)
        if before is None:
            return False  # the host was retired while the probe ran
        after = apply(before, result, self._policy)
        self._fleet.update(key, after)
        if after.state is not before.state or after.reason is not before.reason:
            self._changed(before, after, result.started_at)
        return not result.ok and needs_confirmation(after, self._policy)

    def fact(self, key: HostKey, kind: ProbeKind) -> Fact | None:
        """What is kept of `kind` for a member (None: nothing yet)."""
        if kind is ProbeKind.THROUGHPUT:
            return self.throughput.get(key)
        if kind is ProbeKind.PATHS:
            return self.paths.get(key)
        if kind is ProbeKind.IDENTITY:
            return self.identities.fingerprint(key)
        return None

    def _keep_fact(self, result: ProbeResult) -> None:
        """Hand what is kept after a result that carried a fact to the sink (the store)."""
        if self._facts is None or fact_of(result) is None:
            return
        kept = self.fact(HostKey(result.model, result.host), result.kind)
        if kept is not None:
            self._facts.submit_fact(
                StoredFact(result.model, result.host, result.kind, result.started_at, kept)
            )

    def take_fact(self, stored: StoredFact) -> bool:
        """Keep a fact the probing process stored (a follower's, another vantage's): it replaces
        what is kept of its kind. False when it changed nothing (same, or not a trusted member:
        what the probing process forgets of those, see `retain_kept`)."""
        key = HostKey(stored.model, stored.host)
        fact = stored.fact
        h = self._fleet.health.get(key)
        if h is None or not h.trusted or self.fact(key, stored.kind) == fact:
            return False
        if stored.kind is ProbeKind.THROUGHPUT and isinstance(fact, Throughput):
            self.throughput[key] = fact
        elif stored.kind is ProbeKind.PATHS and isinstance(fact, Paths):
            self.paths[key] = fact
        elif stored.kind is ProbeKind.IDENTITY and isinstance(fact, Fingerprint):
            self.identities.keep(key, fact)
            return True
        else:
            return False
        self._fleet.touch(key)
        return True

    def _measured(self, result: ProbeResult) -> None:
        """Keep a throughput probe's measurement; a failed one leaves the last one shown."""
        measured = result.throughput
        key = (result.model, result.host)
        if result.ok and measured is not None and measured.measured and key in self._fleet.health:
            self.throughput[key] = measured
            self._fleet.touch(key)

    def _learned(self, result: ProbeResult) -> None:
        """Keep what a paths probe learnt; a path it left unknown keeps what was known of it."""
        key = HostKey(result.model, result.host)
        found = result.paths
        if found is None or not found.known or key not in self._fleet.health:
            return
        before = self.paths.get(key)
        after = found if before is None else before.updated(found)
        if after != before:
            self.paths[key] = after
            self._fleet.touch(key)

    def retain_kept(self, _models: set[str]) -> Iterator[None]:
        """Forget the measurements and paths of members gone or no longer trusted (a fleet
        listener, in steps: every up host of a large fleet has them)."""
        health = self._fleet.health
        for kept in (self.throughput, self.paths):
            keys = list(kept)
            gone = yield from mapped(keys, lambda k: (h := health.get(k)) is None or not h.trusted, SYNC_STEP)
            for key, stale in zip(keys, gone, strict=True):
                if stale:
                    kept.pop(key, None)

    def _fan_out_auth(self, result: ProbeResult) -> None:
        """The host auth check is per host: it counts for every model the host serves."""
        host = result.host
        for model in self._fleet.models_of(host):
            key = HostKey(model, host)
            h = self._fleet.health.get(key)
            if h is not None and h.trusted:
                after = apply(h, replace(result, model=model), self._policy)
                self._fleet.update(key, after)
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
        self.summarise_state_log(at)
        if self._state_log.admit(after.state.value, at):
            _log_state(before, after)
        for subscriber in self._on_state:
            subscriber(before, after, at)

    def summarise_state_log(self, now: float) -> None:
        """Write the summary of the changes the log budget held back, once their window is over
        (called on every change and on the clock, so that a burst that stops is summed up too)."""
        held = self._state_log.summary(now)
        if held is not None:
            log.warning(
                "host state changes not logged",
                changes=sum(held.values()),
                by_state=dict(sorted(held.items())),
                window_s=self._state_log.window_s,
                see="/v1/hosts and /v1/history",
            )


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
