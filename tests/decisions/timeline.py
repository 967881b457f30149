"""A monitor's probe schedule replayed on the pure functions (health.apply, ranking.rank) in
simulated time: no network, no clock but the loop's own `t`.

It schedules as the service does at its defaults: a health probe every `probe_interval`, a
completion every `completion_interval`, both every `down_probe_interval` while their group is
failing, and a failed probe confirmed after `confirm_delay`. The ranking is read every second.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from monitor.core.health import HealthPolicy, HostHealth, apply, needs_confirmation, new_host
from monitor.core.ranking import RankingPolicy, rank
from monitor.core.results import HostState, Outcome, ProbeKind, ProbeResult
from monitor.core.steps import finish

MODEL = "hermes-3-8b"

# is the host up at time t?
Schedule = Callable[[float], bool]


def always_up(t: float) -> bool:
    return True


def outages(*windows: tuple[float, float]) -> Schedule:
    def up(t: float) -> bool:
        return not any(start <= t < end for start, end in windows)

    return up


@dataclass
class SimHost:
    url: str
    ttft_ms: float
    up: Schedule = always_up
    health: HostHealth = field(init=False)

    def __post_init__(self) -> None:
        self.health = new_host(MODEL, self.url, trusted=True)


@dataclass(frozen=True)
class Defaults:
    probe_interval: float = 30.0
    down_probe_interval: float = 15.0
    completion_interval: float = 300.0
    confirm_delay: float = 2.0


DEFAULT_HEALTH = HealthPolicy()
DEFAULT_RANKING = RankingPolicy()
DEFAULTS = Defaults()


def run(
    hosts: list[SimHost],
    until: float,
    *,
    health: HealthPolicy = DEFAULT_HEALTH,
    ranking: RankingPolicy = DEFAULT_RANKING,
    timing: Defaults = DEFAULTS,
) -> list[tuple[float, str | None]]:
    """Best host at every whole second from 0 to `until` (first probes of each host spread over
    its first seconds, as the service's start-up ramp does)."""
    due: dict[tuple[str, ProbeKind], float] = {}
    for i, h in enumerate(hosts):
        due[(h.url, ProbeKind.HEALTH)] = 0.5 * i
        due[(h.url, ProbeKind.COMPLETION)] = 0.5 * i + 0.25
    by_url = {h.url: h for h in hosts}
    best: str | None = None
    seen: list[tuple[float, str | None]] = []
    t = 0.0
    while t <= until:
        for (url, kind), at in sorted(due.items(), key=lambda kv: kv[1]):
            if at > t:
                continue
            h = by_url[url]
            ok = h.up(at)
            result = ProbeResult(
                MODEL,
                url,
                kind,
                Outcome.OK if ok else Outcome.SERVER_ERROR,
                started_at=at,
                ttft_ms=h.ttft_ms if ok and kind is ProbeKind.COMPLETION else None,
                total_ms=(h.ttft_ms + 20.0) if ok else None,
            )
            h.health = apply(h.health, result, health)
            group = h.health.liveness if kind is ProbeKind.HEALTH else h.health.serving
            base = timing.probe_interval if kind is ProbeKind.HEALTH else timing.completion_interval
            interval = min(base, timing.down_probe_interval) if group.failing else base
            if not ok and needs_confirmation(h.health, health):
                interval = timing.confirm_delay
            due[(url, kind)] = at + interval
        r = finish(rank(MODEL, [h.health for h in hosts], best, t, ranking, keyed=True))
        best = r.best
        seen.append((t, best))
        t += 1.0
    return seen


def first_best_after(seen: list[tuple[float, str | None]], url: str, after: float) -> float | None:
    """Seconds after `after` until `url` is best (and stays best for the rest of the run)."""
    for t, best in seen:
        if t >= after and best == url and all(b == url for tt, b in seen if tt >= t):
            return t - after
    return None


def is_up(h: SimHost) -> bool:
    return h.health.state is HostState.UP
