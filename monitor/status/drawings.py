"""History drawn once per history read, not once per snapshot.

The snapshot changes every quarter second; the history only when it is read again (every 30 s)
or when the hour turns. Bars, sparklines and charts depend only on the latter, so they are drawn
once per (history version, hour) and reused by every page rendered meanwhile. Shared by the
render threads: a drawing is a frozen value, and two threads drawing the same one at once only
waste a little work.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from markupsafe import Markup

from monitor.status import svg
from monitor.status.history import (
    CHART_DAYS,
    Bucket,
    History,
    day_slots,
    hour_slots,
    hour_start,
    model_series,
    series,
)
from monitor.status.words import day_label, hour_label, pct

_MAX_ENTRIES: Final = 4096
_Key = tuple[str, tuple[str, ...], bool, bool]  # base model, its hosts, per-host drawings, chart


@dataclass(frozen=True, slots=True)
class Drawn:
    """One series (a model's or a host's) as the page shows it."""

    bars24: Markup
    bars90: Markup
    spark: Markup
    uptime24: str
    uptime90: str
    chart: Markup | None = None


@dataclass(frozen=True, slots=True)
class ModelDrawing:
    model: Drawn
    hosts: Mapping[str, Drawn]  # per host URL; empty unless asked for


def _total(buckets: Sequence[Bucket | None]) -> float | None:
    probes = ok = 0
    for b in buckets:
        if b is not None:
            probes += b.probes
            ok += b.ok
    return ok / probes if probes else None


class _Slots:
    def __init__(self, now: float) -> None:
        self.hours = hour_slots(now)
        self.days = day_slots(now)
        self.hour_labels = [hour_label(h) for h in self.hours]
        self.day_labels = [day_label(d) for d in self.days]


def draw(
    hourly: Sequence[Bucket | None], daily: Sequence[Bucket | None], slots: _Slots, name: str, chart: bool
) -> Drawn:
    return Drawn(
        bars24=svg.uptime_bars(hourly, slots.hour_labels, f"{name}: last 24 hours by hour"),
        bars90=svg.uptime_bars(daily, slots.day_labels, f"{name}: last 90 days by day"),
        spark=svg.sparkline([None if b is None else b.ttft_ms_p50 for b in hourly], name),
        uptime24=pct(_total(hourly)),
        uptime90=pct(_total(daily)),
        chart=svg.ttft_chart(daily[-CHART_DAYS:], slots.days[-CHART_DAYS:], name) if chart else None,
    )


class Drawings:
    """Drawings of the current history, dropped as a whole when the history or the hour changes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._generation: tuple[int, float] | None = None
        self._slots: _Slots | None = None
        self._cache: dict[_Key, ModelDrawing] = {}

    def _current(self, history: History, now: float) -> tuple[_Slots, dict[_Key, ModelDrawing]]:
        generation = (history.version, hour_start(now))
        with self._lock:
            if generation != self._generation or self._slots is None:
                self._generation = generation
                self._slots = _Slots(now)
                self._cache = {}
            if len(self._cache) > _MAX_ENTRIES:
                self._cache.clear()
            return self._slots, self._cache

    def model(
        self, history: History, now: float, base: str, urls: tuple[str, ...], hosts: bool, chart: bool
    ) -> ModelDrawing:
        """The drawing of a model's history (its most available host per period), and of each
        of its hosts' when `hosts`; with the 30-day TTFT chart when `chart`."""
        slots, cache = self._current(history, now)
        key = (base, urls, hosts, chart)
        found = cache.get(key)
        if found is not None:
            return found
        hourly = model_series(history.hourly, base, urls, slots.hours)
        daily = model_series(history.daily, base, urls, slots.days)
        per_host: dict[str, Drawn] = {}
        if hosts:
            for url in urls:
                h = series(history.hourly.get((base, url)), slots.hours)
                d = series(history.daily.get((base, url)), slots.days)
                per_host[url] = draw(h, d, slots, url, False)
        drawing = ModelDrawing(draw(hourly, daily, slots, base, chart), per_host)
        cache[key] = drawing
        return drawing
