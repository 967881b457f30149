"""Pure aggregation of probe rows into hourly roll-ups and history buckets (no I/O)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from monitor.core.percentile import percentile_of_sorted
from monitor.core.slo import counts_for_availability, counts_for_ttft
from monitor.store.codes import (
    KIND_BY_CODE,
    NEUTRAL_OUTCOME_CODES,
    OK_CODE,
    OUTCOME_BY_CODE,
    SERVING_KIND_CODES,
)

# One probe as aggregation sees it: (kind code, outcome code, ttft_ms, total_ms).
Observation = tuple[int, int, float | None, float | None]


@dataclass(frozen=True, slots=True)
class Agg:
    probes: int
    ok: int
    ttft_ms_p50: float | None
    ttft_ms_p95: float | None
    latency_ms_p50: float | None

    @property
    def availability(self) -> float | None:
        return self.ok / self.probes if self.probes else None


def aggregate(rows: Iterable[Observation]) -> Agg | None:
    """Aggregate raw rows of one (model, host) and one bucket; None when no row counts.
    Percentiles are nearest-rank (`monitor.core.percentile`), as in `/v1/hosts`."""
    probes = ok = 0
    ttfts: list[float] = []
    serving_lat: list[float] = []
    free_lat: list[float] = []
    has_serving = False
    for kind, outcome, ttft, total in rows:
        if outcome in NEUTRAL_OUTCOME_CODES:
            continue
        probes += 1
        serving = kind in SERVING_KIND_CODES
        has_serving = has_serving or serving
        if outcome != OK_CODE:
            continue
        ok += 1
        if ttft is not None:
            ttfts.append(ttft)
        if total is not None:
            (serving_lat if serving else free_lat).append(total)
    if probes == 0:
        return None
    ttfts.sort()
    lat = sorted(serving_lat if has_serving else free_lat)
    return Agg(
        probes,
        ok,
        percentile_of_sorted(ttfts, 50),
        percentile_of_sorted(ttfts, 95),
        percentile_of_sorted(lat, 50),
    )


@dataclass(frozen=True, slots=True)
class SloTally:
    """What the SLOs count of some probes (see `monitor.core.slo`)."""

    probes: int = 0
    ok: int = 0
    ttft_counted: int = 0
    ttft_within: int = 0


def slo_tally(rows: Iterable[Observation], ttft_ms: float) -> SloTally:
    """Count `rows` toward the availability and TTFT objectives, TTFT within `ttft_ms`."""
    probes = ok = counted = within = 0
    for kind_code, outcome_code, ttft, _total in rows:
        kind, outcome = KIND_BY_CODE.get(kind_code), OUTCOME_BY_CODE.get(outcome_code)
        if kind is None or outcome is None or not counts_for_availability(kind, outcome):
            continue
        probes += 1
        ok += outcome_code == OK_CODE
        if ttft is not None and counts_for_ttft(kind, outcome, ttft):
            counted += 1
            within += ttft <= ttft_ms
    return SloTally(probes, ok, counted, within)


def _weighted(parts: Sequence[Agg], value: str) -> float | None:
    num = 0.0
    den = 0
    for part in parts:
        v = getattr(part, value)
        if v is not None:
            w = max(part.ok, 1)
            num += v * w
            den += w
    return num / den if den else None


def merge(parts: Sequence[Agg]) -> Agg:
    """Combine aggregates of consecutive periods: counts add up; percentiles are the ok-weighted
    mean of the parts' percentiles (an approximation, exact for a single part)."""
    if len(parts) == 1:
        return parts[0]
    return Agg(
        probes=sum(p.probes for p in parts),
        ok=sum(p.ok for p in parts),
        ttft_ms_p50=_weighted(parts, "ttft_ms_p50"),
        ttft_ms_p95=_weighted(parts, "ttft_ms_p95"),
        latency_ms_p50=_weighted(parts, "latency_ms_p50"),
    )


def round_ms(value: float | None) -> float | None:
    """Whole milliseconds: SQLite stores an integral REAL in 1-2 bytes instead of 8."""
    return None if value is None else float(round(value))
