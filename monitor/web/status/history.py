"""History for the page as values: buckets per (model, host), and how a model's bucket is read.

Pure: built by `monitor.web.status.data` from the store, read by `monitor.web.status.page`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

from monitor.core.keys import HostKey

HOUR: Final = 3600
DAY: Final = 86400
HOURS_SHOWN: Final = 24
DAYS_SHOWN: Final = 90
CHART_DAYS: Final = 30


@dataclass(frozen=True, slots=True)
class Bucket:
    """One hour or one day of one host (or of a model: see `model_bucket`)."""

    at: float  # start, epoch seconds
    probes: int
    ok: int
    ttft_ms_p50: float | None
    ttft_ms_p95: float | None
    hosts: int = 1

    @property
    def availability(self) -> float | None:
        return self.ok / self.probes if self.probes else None


@dataclass(frozen=True, slots=True)
class History:
    """What the page shows of the past, read in the background (never on a request)."""

    hourly: Mapping[HostKey, Mapping[float, Bucket]] = field(default_factory=dict)
    daily: Mapping[HostKey, Mapping[float, Bucket]] = field(default_factory=dict)
    loaded_at: float | None = None
    version: int = 0  # one per read
    epoch: int = 0  # one per read of the daily sums: settled periods are the same within an epoch
    error: str | None = None


def hour_start(ts: float) -> float:
    return float(int(ts // HOUR) * HOUR)


def day_start(ts: float) -> float:
    return float(int(ts // DAY) * DAY)


def hour_slots(now: float) -> list[float]:
    """The starts of the last 24 hours, oldest first, the current (partial) hour last."""
    last = hour_start(now)
    return [last - HOUR * i for i in range(HOURS_SHOWN - 1, -1, -1)]


def day_slots(now: float, days: int = DAYS_SHOWN) -> list[float]:
    last = day_start(now)
    return [last - DAY * i for i in range(days - 1, -1, -1)]


def _weighted(parts: Sequence[Bucket], p95: bool) -> float | None:
    num = 0.0
    den = 0
    for b in parts:
        v = b.ttft_ms_p95 if p95 else b.ttft_ms_p50
        if v is not None:
            w = max(b.ok, 1)
            num += v * w
            den += w
    return num / den if den else None


def merge(at: float, parts: Sequence[Bucket]) -> Bucket:
    """Consecutive periods of one host as one: counts add up, percentiles are ok-weighted means
    (as the store's own history does over several hours)."""
    if len(parts) == 1 and parts[0].at == at:
        return parts[0]
    return Bucket(
        at,
        sum(b.probes for b in parts),
        sum(b.ok for b in parts),
        _weighted(parts, False),
        _weighted(parts, True),
    )


def model_bucket(at: float, parts: Iterable[Bucket]) -> Bucket | None:
    """A model's bucket from its hosts' buckets of the same period.

    A client that follows `best` is served when any host is, and sees that host's speed: so a
    model's availability and TTFT are those of its most available host in the period (the faster
    one on a tie), while `probes` and `hosts` count all of them."""
    chosen: Bucket | None = None
    probes = hosts = 0
    for b in parts:
        if not b.probes:
            continue
        probes += b.probes
        hosts += 1
        if chosen is None or _better(b, chosen):
            chosen = b
    if chosen is None:
        return None
    return Bucket(
        at, probes, round(probes * chosen.ok / chosen.probes), chosen.ttft_ms_p50, chosen.ttft_ms_p95, hosts
    )


def _better(a: Bucket, b: Bucket) -> bool:
    av, bv = a.ok / a.probes, b.ok / b.probes
    if av != bv:
        return av > bv
    at, bt = a.ttft_ms_p50, b.ttft_ms_p50
    return at is not None and (bt is None or at < bt)


def series(by_time: Mapping[float, Bucket] | None, slots: Sequence[float]) -> list[Bucket | None]:
    if not by_time:
        return [None] * len(slots)
    return [by_time.get(s) for s in slots]


def model_series(
    history: Mapping[HostKey, Mapping[float, Bucket]],
    model: str,
    hosts: Iterable[str],
    slots: Sequence[float],
) -> list[Bucket | None]:
    """`model_bucket` for every slot, in one pass (a page draws ten thousand of them)."""
    per_host = [m for h in hosts if (m := history.get(HostKey(model, h)))]
    out: list[Bucket | None] = []
    inf = float("inf")
    for s in slots:
        chosen: Bucket | None = None
        chosen_av, chosen_ttft = -1.0, inf
        probes = hosts_seen = 0
        for m in per_host:
            b = m.get(s)
            if b is None or not b.probes:
                continue
            probes += b.probes
            hosts_seen += 1
            av = b.ok / b.probes
            ttft = inf if b.ttft_ms_p50 is None else b.ttft_ms_p50
            if av > chosen_av or (av == chosen_av and ttft < chosen_ttft):
                chosen, chosen_av, chosen_ttft = b, av, ttft
        if chosen is None:
            out.append(None)
        elif hosts_seen == 1:
            out.append(chosen)
        else:
            ok = round(probes * chosen_av)
            out.append(Bucket(s, probes, ok, chosen.ttft_ms_p50, chosen.ttft_ms_p95, hosts_seen))
    return out
