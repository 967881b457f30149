"""The hosts of a model worth sending to now, and the share of new requests each should get. Pure.

A single best host is what one client needs; when many clients follow the answer, they must spread
over the hosts by what each can still take, or they all land on one machine, slow it down, and move
together to the next. The candidates tell them how (the failover client draws from them).

Which hosts, best first: the model's up hosts in ranking order (the best host, then its fallbacks),
then the hosts whose health answered 202 (`not_loaded`: the model would serve after a cold load),
marked `warm` false. Hosts down for any other reason are not candidates. At most `MAX_CANDIDATES`.

Load: how far a host's time to first token has risen over its own unloaded figure. The median of its
`RECENT` newest ok completion TTFTs is compared with the median of the older ones in its window (what
is usual for it, jitter included), in units of its baseline, the `BASELINE_PERCENTILE`th percentile
of its window: `max(0, (recent - usual) / baseline)`. A host whose TTFT doubled has a load of about
1, however fast it is; its usual jitter is no load; 0 with fewer than `MIN_LOAD_SAMPLES` samples. A
host under load for most of a window has an inflated usual figure and so shows less load than it has:
the window is long (hours of billed completions) for that reason.

Weight: the share of new requests, proportional to speed times free capacity: speed is 1 / baseline TTFT,
free is 1 / (1 + load) ** 2, so a busy host gets less than its slowdown alone would say and its queue
drains. A host without TTFT samples (a new host, a health-only or embedding model: their latency is
not a time to first token) counts at the median speed of the others, all alike when none has one.
While a warm host is up the cold ones weigh 0 (listed as a last resort); with none up, the cold ones
share. Published weights are whole millionths that sum to exactly one (largest remainders).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import median
from typing import Any, Protocol

from monitor.core.percentile import percentile
from monitor.core.results import HostState, Outcome
from monitor.core.steps import Steps

__all__ = [
    "BASELINE_PERCENTILE",
    "MAX_CANDIDATES",
    "MIN_LOAD_SAMPLES",
    "RECENT",
    "Candidate",
    "Host",
    "Measured",
    "candidates",
    "coarse",
    "free",
    "host_load",
    "reordered",
    "weights",
]

RECENT = 3
BASELINE_PERCENTILE = 10
MIN_LOAD_SAMPLES = 5
MAX_CANDIDATES = 256  # what the failover client reads of an answer
_UNITS = 1_000_000  # a published weight is a whole number of these parts of one
_MIN_MS = 0.1  # a baseline below this is a clock's rounding, not a speed
_HOSTS_PER_STEP = 1000
_ETAG_STEP = 0.05  # weight changes smaller than this do not change a best answer's ETag


class Measured(Protocol):
    """What the candidates read of a host (a `monitor.core.snapshot.HostView`)."""

    @property
    def url(self) -> str: ...
    @property
    def state(self) -> HostState: ...
    @property
    def reason(self) -> Outcome: ...
    @property
    def ttft_ms_p50(self) -> float | None: ...
    @property
    def ttft_ms_p95(self) -> float | None: ...
    @property
    def ttft_ms_baseline(self) -> float | None: ...
    @property
    def load(self) -> float: ...


@dataclass(frozen=True, slots=True)
class Candidate:
    """A host worth sending to, with its share of new requests (`weight`) and what it is based on."""

    url: str
    weight: float
    ttft_ms_p50: float | None
    ttft_ms_p95: float | None
    load: float
    warm: bool

    def as_json(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "weight": self.weight,
            "ttft_ms_p50": None if self.ttft_ms_p50 is None else round(self.ttft_ms_p50, 1),
            "ttft_ms_p95": None if self.ttft_ms_p95 is None else round(self.ttft_ms_p95, 1),
            "load": round(self.load, 2),
            "warm": self.warm,
        }


def host_load(ttfts_at: Sequence[tuple[float, float]]) -> tuple[float | None, float]:
    """(baseline TTFT, load) from a host's ok completion (time, TTFT ms) samples, any order; the
    baseline is None without samples, the load 0 with too few (see the module's docstring)."""
    values = [ttft for _, ttft in ttfts_at]
    baseline = percentile(values, BASELINE_PERCENTILE)
    if baseline is None or len(values) < MIN_LOAD_SAMPLES or baseline <= 0:
        return baseline, 0.0
    by_time = [ttft for _, ttft in sorted(ttfts_at, key=lambda s: s[0])]
    recent, usual = percentile(by_time[-RECENT:], 50), percentile(by_time[:-RECENT], 50)
    assert recent is not None and usual is not None
    return baseline, max(0.0, (recent - usual) / baseline)


def free(load: float) -> float:
    """The share of its capacity a host at `load` has free, as its weight counts it (1 when idle)."""
    return 1.0 / (1.0 + max(load, 0.0)) ** 2


def weights(hosts: Sequence[tuple[float | None, float]]) -> tuple[float, ...]:
    """Published weights of hosts given as (baseline TTFT ms or None, load): in whole millionths
    summing to exactly one; () for no host."""
    if not hosts:
        return ()
    speeds = [None if baseline is None else 1.0 / max(baseline, _MIN_MS) for baseline, _ in hosts]
    known = [speed for speed in speeds if speed is not None]
    typical = median(known) if known else 1.0
    raw = [
        (typical if speed is None else speed) * free(load)
        for speed, (_, load) in zip(speeds, hosts, strict=True)
    ]
    total = math.fsum(raw)
    scaled = [r / total * _UNITS for r in raw]
    units = [math.floor(s) for s in scaled]
    left = _UNITS - sum(units)
    # Largest remainders first, the better-ranked host on a tie.
    by_remainder = sorted(range(len(units)), key=lambda i: (units[i] - scaled[i], i))
    for n in range(max(left, 0)):
        units[by_remainder[n % len(units)]] += 1
    return tuple(u / _UNITS for u in units)


def _cold(h: Measured) -> bool:
    return h.state in (HostState.DOWN, HostState.UNKNOWN) and h.reason is Outcome.NOT_LOADED


@dataclass(frozen=True, slots=True)
class Host:
    """A host as `Measured` asks, made of plain values (the best host when its view is missing,
    which is known by its URL alone)."""

    url: str
    state: HostState = HostState.UP
    reason: Outcome = Outcome.OK
    ttft_ms_p50: float | None = None
    ttft_ms_p95: float | None = None
    ttft_ms_baseline: float | None = None
    load: float = 0.0


def candidates(best: str | None, hosts: Sequence[Measured]) -> Steps[tuple[Candidate, ...]]:
    """The candidates of a model whose best host is `best` and whose hosts, in ranking order, are
    `hosts`; a step every thousand hosts looked at."""
    warm: list[Measured] = []
    cold: list[Measured] = []
    for i, h in enumerate(hosts, 1):
        if h.state is HostState.UP:
            if h.url == best:
                warm.insert(0, h)
            else:
                warm.append(h)
        elif _cold(h):
            cold.append(h)
        if len(warm) >= MAX_CANDIDATES:
            break
        if i % _HOSTS_PER_STEP == 0:
            yield None
    if best is not None and (not warm or warm[0].url != best):
        warm.insert(0, Host(best))  # its view is missing: it stays first all the same
    listed = warm[:MAX_CANDIDATES] + cold[: max(MAX_CANDIDATES - len(warm), 0)]
    sharing = len(warm) or len(listed)
    shares = weights([(h.ttft_ms_baseline, h.load) for h in listed[:sharing]])
    shares += (0.0,) * (len(listed) - sharing)
    return tuple(
        Candidate(h.url, w, h.ttft_ms_p50, h.ttft_ms_p95, h.load, h.state is HostState.UP)
        for h, w in zip(listed, shares, strict=True)
    )


def reordered(chosen: Sequence[Candidate], order: Sequence[str]) -> tuple[Candidate, ...]:
    """`chosen` with the warm candidates in `order` (another sort of the best host and its
    fallbacks), the cold ones after them as they were."""
    rank = {url: i for i, url in enumerate(order)}
    return tuple(sorted(chosen, key=lambda c: (not c.warm, rank.get(c.url, len(rank)))))


def coarse(chosen: Sequence[Candidate]) -> list[list[Any]]:
    """What a client acts on in the candidates, for a best answer's ETag: each host, whether it is
    warm, and its weight in steps of 0.05 (a small drift does not make clients fetch again)."""
    return [[c.url, c.warm, round(c.weight / _ETAG_STEP)] for c in chosen]
