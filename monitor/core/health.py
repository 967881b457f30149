"""Health of one (model, host): a rolling window of probe samples and an up/down state machine.

Pure functions over frozen values, no I/O: `apply(h, result, policy)` returns the next `HostHealth`.

Evidence comes in two groups, each with its own streaks:

* *liveness*: the free health probe (`GET /health/{model}`). A 202 (`not_loaded`) is a failure of
  this group, so after the threshold such a host is down with reason `not_loaded`.
* *serving*: completion and embedding probes, and the host's auth check. One exception, because an
  auth check vouches for the key and never for the model: an `ok` auth check neither clears nor
  interrupts a failure streak that a completion or embedding started (otherwise a host whose
  completions fail would flap back up on its free auth checks). It still sets `key_ok` and is kept
  as a sample.

A group becomes *failing* after `unhealthy_threshold` consecutive failures of that group, and stops
failing after `healthy_threshold` consecutive successes of that group. Any failure resets the group's
success streak and any success its failure streak.

Neutral outcomes (`unsupported`, `not_probed`, `key_blocked`) are not evidence: they only move
`last_probe_at`; they are not kept as samples and leave `key_ok` as it was.

State, after every decisive result:

* `down` if any group is failing; `reason` is the failing group's last failure, the serving group's
  when both fail (a host whose completions fail is down whatever its health endpoint says). So a
  down host comes back only when every failing group has recovered: a passing health check alone
  never brings back a host whose completions failed.
* else `up` if at least one (counted) success was ever seen: as in Envoy, a new host is up after its
  first success; `reason` is `ok`.
* else `unknown`: never succeeded and no group failing yet; `reason` is the last failure, or
  `not_probed` before any evidence. So a host that fails before its first success stays `unknown`
  until the threshold, then goes `down`.
* untrusted hosts (outside the allow-list) are `untrusted` with reason `not_probed` forever; results
  for them are ignored.

Ejection, as Envoy's outlier detection: every transition up -> down records an ejection at the
result's `started_at`; `ejected_until = now + min(ejection_base_s * 2**(n-1), ejection_max_s)` where
`n` counts the ejections in the last `ejection_memory_s` seconds (`now - t < memory`), this one
included. `is_eligible` (may compete for best) needs state up and `now >= ejected_until`; a single
outage is forgiven (its ejection time usually runs out while the host is down), a flapping host stays
out longer each time. A host that goes down without having been up (unknown -> down) is not ejected.
A host that comes back up (down -> up) with at most one ejection within the memory is forgiven:
`forgiven_before` moves to that time, and the ranking leaves the failures before it out of its
failure share (the outage was punished by going down and by the ejection). A second outage within
the memory is not forgiven: its failures stay in the share, fading with the ranking's half-life.

Times: a result's `started_at` is its time (sample time, ejection time); `last_probe_at` and
`last_ok_at` never move backwards when results arrive out of order. Samples are kept in arrival
order, newest last, at most `policy.window` of each kind (kinds come at very different rates).

Percentiles are nearest-rank: the p-th percentile of n sorted values is the value at 1-based rank
ceil(p/100 * n), always an observed value (p50 of [1, 2, 3, 4] is 2, p95 of 1..20 is 19).

Cost: `apply` is O(window) (it copies the host's packed window, `monitor.core.window`, in C: some 25
bytes per sample) with small constants; `replay` (a restart's history, many results at once) is
O(window + results); `stats` sorts at most `window` values.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Final

from monitor.core.failure import Failure, failure_of
from monitor.core.percentile import percentile
from monitor.core.results import HostState, Outcome, ProbeKind, ProbeResult
from monitor.core.window import Evidence, Sample, Window

__all__ = [
    "NEUTRAL_OUTCOMES",
    "SERVING_KINDS",
    "Evidence",
    "HealthPolicy",
    "HostHealth",
    "HostStats",
    "Sample",
    "Streak",
    "Window",
    "apply",
    "is_eligible",
    "needs_confirmation",
    "new_host",
    "percentile",
    "replay",
    "replay_evidence",
    "stats",
]

# Outcomes that say nothing about the host: an optional endpoint it lacks, or no probe at all.
# A blocked key (`key_blocked`) is the monitor's problem, not the host's: it is not evidence either.
NEUTRAL_OUTCOMES: frozenset[Outcome] = frozenset(
    {Outcome.UNSUPPORTED, Outcome.NOT_PROBED, Outcome.KEY_BLOCKED}
)
# Kinds whose evidence belongs to the serving group (everything but the health probe).
SERVING_KINDS: frozenset[ProbeKind] = frozenset({ProbeKind.COMPLETION, ProbeKind.EMBEDDING, ProbeKind.AUTH})
# Kinds that actually run the model: their failures cannot be cleared by an auth check.
_MODEL_KINDS: frozenset[ProbeKind] = frozenset({ProbeKind.COMPLETION, ProbeKind.EMBEDDING})
# Kinds that send the key and whose success proves it was accepted.
_KEYED_KINDS = SERVING_KINDS
# Beyond this many doublings the cap has long been reached; bounding the exponent avoids overflow.
_MAX_DOUBLINGS = 32


@dataclass(frozen=True, slots=True)
class HealthPolicy:
    unhealthy_threshold: int = 2
    healthy_threshold: int = 2
    window: int = 50  # samples kept per host and probe kind
    ejection_base_s: float = 30.0
    ejection_max_s: float = 300.0
    ejection_memory_s: float = 3600.0

    def __post_init__(self) -> None:
        if self.unhealthy_threshold < 1 or self.healthy_threshold < 1:
            raise ValueError("health thresholds must be at least 1")
        if self.window < 1:
            raise ValueError("health window must hold at least 1 sample")
        if self.ejection_base_s < 0 or self.ejection_max_s < self.ejection_base_s:
            raise ValueError("ejection times must satisfy 0 <= ejection_base_s <= ejection_max_s")
        if self.ejection_memory_s < 0:
            raise ValueError("ejection_memory_s must not be negative")


@dataclass(frozen=True, slots=True)
class Streak:
    """The running record of one evidence group (liveness or serving)."""

    failures: int = 0  # current run of consecutive failures
    successes: int = 0  # current run of consecutive successes
    failing: bool = False
    last_failure: Outcome | None = None
    last_failure_kind: ProbeKind | None = None


_CLEAN = Streak()
_NO_SAMPLES = Window()


@dataclass(frozen=True, slots=True)
class HostHealth:
    model: str
    host: str
    trusted: bool
    state: HostState
    reason: Outcome
    samples: Window = _NO_SAMPLES  # newest last, at most policy.window of each kind
    last_probe_at: float | None = None
    last_ok_at: float | None = None
    # True after an accepted key (auth ok, completion/embedding ok), False after key_rejected,
    # None while unknown (or when the host only ever answered `unsupported`).
    key_ok: bool | None = None
    liveness: Streak = _CLEAN
    serving: Streak = _CLEAN
    ever_ok: bool = False  # a counted success was seen: the host may be up
    consecutive_failures: int = 0  # current run of failures across all decisive results
    ejected_until: float = 0.0
    ejections: tuple[float, ...] = ()  # ejection times within memory, as of the last ejection
    # Failures before this time belong to a forgiven outage: left out of the ranking's failure
    # share (see `monitor.core.ranking`). Set when the host comes back up after its only ejection
    # within `ejection_memory_s`; a host that went down again within that memory is not forgiven.
    forgiven_before: float | None = None
    # The last failure of each group, with its status and error text: kept in memory only (a
    # restored host has none until it fails again). See `monitor.core.failure`.
    liveness_failure: Failure | None = None
    serving_failure: Failure | None = None


def new_host(model: str, host: str, trusted: bool) -> HostHealth:
    state = HostState.UNKNOWN if trusted else HostState.UNTRUSTED
    return HostHealth(model=model, host=host, trusted=trusted, state=state, reason=Outcome.NOT_PROBED)


def _later(current: float | None, at: float) -> float:
    return at if current is None or at > current else current


def apply(h: HostHealth, r: ProbeResult, policy: HealthPolicy) -> HostHealth:
    """The health of `h` after the probe result `r` (pure; `h` is not changed)."""
    after = replay_evidence(h, ((r.started_at, r.kind, r.outcome, r.ttft_ms, r.total_ms),), policy)
    return _with_failures(after, (r,))


def replay(h: HostHealth, results: Iterable[ProbeResult], policy: HealthPolicy) -> HostHealth:
    """The health of `h` after `results` in order: equal to folding `apply` over them."""
    rs = results if isinstance(results, Sequence) else list(results)
    after = replay_evidence(h, ((r.started_at, r.kind, r.outcome, r.ttft_ms, r.total_ms) for r in rs), policy)
    return _with_failures(after, rs)


def _with_failures(h: HostHealth, results: Sequence[ProbeResult]) -> HostHealth:
    """`h` with the last failure of each group among `results` (arrival order) as its own."""
    if not h.trusted:
        return h
    liveness = serving = None
    for r in reversed(results):
        if r.outcome is Outcome.OK or r.outcome in NEUTRAL_OUTCOMES:
            continue
        if r.kind is ProbeKind.HEALTH:
            liveness = liveness or r
        else:
            serving = serving or r
        if liveness is not None and serving is not None:
            break
    if liveness is None and serving is None:
        return h
    return replace(
        h,
        liveness_failure=h.liveness_failure if liveness is None else failure_of(liveness),
        serving_failure=h.serving_failure if serving is None else failure_of(serving),
    )


def replay_evidence(h: HostHealth, evidence: Iterable[Evidence], policy: HealthPolicy) -> HostHealth:
    """`replay` over what it reads of each result, (started_at, kind, outcome, ttft_ms, total_ms).

    The one implementation of the rules above (`apply` is a replay of one result). A restart
    replays up to `window` results per kind for every host: applying them one at a time would copy
    the window once per result, so the running state is stepped in local variables and the window
    is built once, from the newest samples of each kind. tests/decisions/test_health.py checks that
    a replay equals applying the same results one at a time, on random histories.
    """
    # Untrusted hosts are never probed (the key never goes to them); a stray result is ignored.
    if not h.trusted:
        return h
    up_after, down_after = policy.healthy_threshold, policy.unhealthy_threshold
    memory, base_s, max_s = policy.ejection_memory_s, policy.ejection_base_s, policy.ejection_max_s
    last_probe_at, last_ok_at, key_ok = h.last_probe_at, h.last_ok_at, h.key_ok
    state, reason, ever_ok, run = h.state, h.reason, h.ever_ok, h.consecutive_failures
    ejected_until, ejections, forgiven_before = h.ejected_until, h.ejections, h.forgiven_before
    liveness, serving = _fields(h.liveness), _fields(h.serving)
    kept: list[Evidence] = []
    for e in evidence:
        now, kind, outcome = e[0], e[1], e[2]
        if last_probe_at is None or now > last_probe_at:
            last_probe_at = now
        if outcome in NEUTRAL_OUTCOMES:
            continue
        kept.append(e)
        ok = outcome is Outcome.OK
        if outcome is Outcome.KEY_REJECTED:
            key_ok = False
        elif ok and kind in _KEYED_KINDS:
            key_ok = True
        counted = True
        if kind is ProbeKind.HEALTH:
            liveness = _step(liveness, ok, outcome, kind, up_after, down_after)
        elif (
            ok
            and kind is ProbeKind.AUTH
            and serving[_KIND] in _MODEL_KINDS
            and (serving[_FAILING] or serving[0])
        ):
            counted = False  # the key is fine, but that says nothing of the model that failed
        else:
            serving = _step(serving, ok, outcome, kind, up_after, down_after)

        ever_ok = ever_ok or (ok and counted)
        previous = state
        if serving[_FAILING]:
            state, reason = HostState.DOWN, serving[_FAILURE] or outcome
        elif liveness[_FAILING]:
            state, reason = HostState.DOWN, liveness[_FAILURE] or outcome
        elif ever_ok:
            state, reason = HostState.UP, Outcome.OK
        else:
            state, reason = HostState.UNKNOWN, (reason if ok else outcome)
        if previous is HostState.UP and state is HostState.DOWN:
            ejections = (*(t for t in ejections if now - t < memory), now)
            doublings = min(len(ejections) - 1, _MAX_DOUBLINGS)
            ejected_until = now + min(base_s * 2**doublings, max_s)
        elif (
            previous is HostState.DOWN
            and state is HostState.UP
            and sum(1 for t in ejections if now - t < memory) <= 1
        ):
            forgiven_before = _later(forgiven_before, now)
        if ok:
            run = 0
            last_ok_at = _later(last_ok_at, now)
        else:
            run += 1

    if not kept:
        return h if last_probe_at == h.last_probe_at else replace(h, last_probe_at=last_probe_at)
    return HostHealth(
        model=h.model,
        host=h.host,
        trusted=h.trusted,
        state=state,
        reason=reason,
        samples=h.samples.appended(kept[0], policy.window)
        if len(kept) == 1
        else h.samples.extended(kept, policy.window),
        last_probe_at=last_probe_at,
        last_ok_at=last_ok_at,
        key_ok=key_ok,
        liveness=Streak(*liveness),
        serving=Streak(*serving),
        ever_ok=ever_ok,
        consecutive_failures=run,
        ejected_until=ejected_until,
        ejections=ejections,
        forgiven_before=forgiven_before,
        liveness_failure=h.liveness_failure,
        serving_failure=h.serving_failure,
    )


# A streak while replaying: Streak's fields as a tuple (cheaper to make once per result).
_StreakFields = tuple[int, int, bool, Outcome | None, ProbeKind | None]
_FAILING: Final = 2
_FAILURE: Final = 3
_KIND: Final = 4


def _fields(streak: Streak) -> _StreakFields:
    return streak.failures, streak.successes, streak.failing, streak.last_failure, streak.last_failure_kind


def _step(
    streak: _StreakFields, ok: bool, outcome: Outcome, kind: ProbeKind, up_after: int, down_after: int
) -> _StreakFields:
    """A group's streak after one decisive result of it (see the module doc)."""
    failures, successes, failing, failure, failure_kind = streak
    if ok:
        return 0, successes + 1, failing and successes + 1 < up_after, failure, failure_kind
    return failures + 1, 0, failing or failures + 1 >= down_after, outcome, kind


def is_eligible(h: HostHealth, now: float) -> bool:
    """Up and out of its ejection time: the host may compete for best."""
    return h.state is HostState.UP and now >= h.ejected_until


def needs_confirmation(h: HostHealth, policy: HealthPolicy) -> bool:
    """The last decisive probe failed but its group is not failing yet: re-probe at once.

    Detect fast: confirming a first failure right away rather than an interval later lets a dead
    host leave `best` within about one interval.
    """
    last = h.samples.last()
    if not h.trusted or last is None:
        return False
    kind, outcome = last
    if outcome is Outcome.OK:
        return False
    group = h.liveness if kind is ProbeKind.HEALTH else h.serving
    return not group.failing and 0 < group.failures < policy.unhealthy_threshold


@dataclass(frozen=True, slots=True)
class HostStats:
    availability: float | None  # ok samples / decisive samples in the window
    samples: int  # decisive samples in the window
    ttft_ms_p50: float | None
    ttft_ms_p95: float | None
    latency_ms_p50: float | None
    consecutive_failures: int


def stats(h: HostHealth) -> HostStats:
    """Figures over the window: availability, time to first token, latency, failure run."""
    window = h.samples
    n = len(window)
    ttfts = window.ok_ttfts(ProbeKind.COMPLETION)
    # Latency of the model's own work if measured (completion, embedding); else of its health
    # endpoint. The auth check's latency says nothing about the model, so it is left out.
    latencies = window.ok_totals(ProbeKind.COMPLETION, ProbeKind.EMBEDDING) or window.ok_totals(
        ProbeKind.HEALTH
    )
    return HostStats(
        availability=window.ok_count() / n if n else None,
        samples=n,
        ttft_ms_p50=percentile(ttfts, 50),
        ttft_ms_p95=percentile(ttfts, 95),
        latency_ms_p50=percentile(latencies, 50),
        consecutive_failures=h.consecutive_failures,
    )
