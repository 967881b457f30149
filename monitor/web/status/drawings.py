"""History drawn once per history read, not once per snapshot.

The snapshot changes every quarter second; the history only when it is read again (every 30 s)
or when the hour turns. Bars, sparklines and charts depend only on the latter, so they are drawn
once per (history version, hour) and reused by every page rendered meanwhile. Shared by the
pages being rendered (their steps interleave on the loop): a drawing is a frozen value, and two
pages drawing the same one only waste a little work.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from markupsafe import Markup

from monitor.core.keys import HostKey
from monitor.web.status import svg
from monitor.web.status.history import (
    CHART_DAYS,
    Bucket,
    History,
    day_slots,
    hour_slots,
    hour_start,
    model_series,
    series,
)
from monitor.web.status.words import day_label, hour_label, pct

_MAX_ENTRIES: Final = 4096
# Periods that a new read of the history may still change: the current and the previous hour (late
# results), today and yesterday.
LIVE_HOURS: Final = 2
LIVE_DAYS: Final = 2
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
        self.stable_hours = len(self.hours) - LIVE_HOURS
        self.stable_days = len(self.days) - LIVE_DAYS


@dataclass(frozen=True, slots=True)
class _Past:
    """The settled periods of one series, drawn once per (hour, history epoch)."""

    hourly: list[Bucket | None]
    daily: list[Bucket | None]
    rects24: str
    rects90: str


def _past(hourly: list[Bucket | None], daily: list[Bucket | None], slots: _Slots) -> _Past:
    h, d = slots.stable_hours, slots.stable_days
    return _Past(
        hourly,
        daily,
        svg.bar_rects(hourly, slots.hour_labels[:h], 0, False),
        svg.bar_rects(daily, slots.day_labels[:d], 0, True),
    )


def draw(
    past: _Past,
    hourly: list[Bucket | None],
    daily: list[Bucket | None],
    slots: _Slots,
    name: str,
    chart: bool,
) -> Drawn:
    """A series from its settled periods (drawn already) and its live ones (`hourly`, `daily`)."""
    h, d = slots.stable_hours, slots.stable_days
    rects24 = past.rects24 + svg.bar_rects(hourly, slots.hour_labels[h:], h, False)
    rects90 = past.rects90 + svg.bar_rects(daily, slots.day_labels[d:], d, True)
    all_hours, all_days = past.hourly + hourly, past.daily + daily
    return Drawn(
        bars24=svg.bars_svg(rects24, len(slots.hours), f"{name}: last 24 hours by hour"),
        bars90=svg.bars_svg(rects90, len(slots.days), f"{name}: last 90 days by day"),
        spark=svg.sparkline([None if b is None else b.ttft_ms_p50 for b in all_hours], name),
        uptime24=pct(_total(all_hours)),
        uptime90=pct(_total(all_days)),
        chart=svg.ttft_chart(all_days[-CHART_DAYS:], slots.days[-CHART_DAYS:], name) if chart else None,
    )


class Drawings:
    """Drawings of the current history, dropped as a whole when the history or the hour changes.

    Each read of the history changes only its last periods (the current hour, today): periods
    before the last `LIVE_HOURS` hours and `LIVE_DAYS` days are drawn once per hour and history
    epoch (a new read of the daily sums, every 10 minutes) and reused; only the live ones are
    drawn again for every read."""

    def __init__(self) -> None:
        self._generation: tuple[int, float] | None = None
        self._past_generation: tuple[int, bool, float] | None = None
        self._slots: _Slots | None = None
        self._cache: dict[_Key, ModelDrawing] = {}
        self._pasts: dict[tuple[str, str | tuple[str, ...]], _Past] = {}

    def _current(
        self, history: History, now: float
    ) -> tuple[_Slots, dict[_Key, ModelDrawing], dict[tuple[str, str | tuple[str, ...]], _Past]]:
        hour = hour_start(now)
        generation = (history.version, hour)
        past_generation = (history.epoch, history.loaded_at is None, hour)
        if generation != self._generation or self._slots is None:
            self._generation = generation
            self._slots = _Slots(now)
            self._cache = {}
        if past_generation != self._past_generation:
            self._past_generation = past_generation
            self._pasts = {}
        if len(self._cache) > _MAX_ENTRIES:
            self._cache.clear()
        if len(self._pasts) > 4 * _MAX_ENTRIES:
            self._pasts.clear()
        return self._slots, self._cache, self._pasts

    def model(
        self, history: History, now: float, base: str, urls: tuple[str, ...], hosts: bool, chart: bool
    ) -> ModelDrawing:
        """The drawing of a model's history (its most available host per period), and of each
        of its hosts' when `hosts`; with the 30-day TTFT chart when `chart`."""
        slots, cache, pasts = self._current(history, now)
        key = (base, urls, hosts, chart)
        found = cache.get(key)
        if found is not None:
            return found
        h, d = slots.stable_hours, slots.stable_days
        past = pasts.get((base, urls))  # the model-level series of these hosts
        if past is None:
            past = _past(
                model_series(history.hourly, base, urls, slots.hours[:h]),
                model_series(history.daily, base, urls, slots.days[:d]),
                slots,
            )
            pasts[(base, urls)] = past
        live_h = model_series(history.hourly, base, urls, slots.hours[h:])
        live_d = model_series(history.daily, base, urls, slots.days[d:])
        per_host: dict[str, Drawn] = {}
        if hosts:
            for url in urls:
                hp = pasts.get((base, url))
                if hp is None:
                    hp = _past(
                        series(history.hourly.get(HostKey(base, url)), slots.hours[:h]),
                        series(history.daily.get(HostKey(base, url)), slots.days[:d]),
                        slots,
                    )
                    pasts[(base, url)] = hp
                hh = series(history.hourly.get(HostKey(base, url)), slots.hours[h:])
                hd = series(history.daily.get(HostKey(base, url)), slots.days[d:])
                per_host[url] = draw(hp, hh, hd, slots, url, False)
        drawing = ModelDrawing(draw(past, live_h, live_d, slots, base, chart), per_host)
        cache[key] = drawing
        return drawing
