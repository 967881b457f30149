"""Values the store takes and gives back. Times are epoch seconds (floats)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class DiscoveryRecord:
    """One discovery run: `models` and `hosts` are the counts found; `error` a short, secret-free
    summary when it failed (stored truncated to 500 characters)."""

    at: float
    ok: bool
    duration_s: float
    models: int
    hosts: int
    error: str | None = None


@dataclass(frozen=True, slots=True)
class HistoryPoint:
    """One bucket of one host: `at` is the bucket's start.

    `probes` counts every probe that says something about availability (all kinds; `unsupported`
    and `not_probed` outcomes are left out), `ok` those that succeeded. TTFT comes from successful
    probes that measured one (completions). Latency is the total time of successful serving probes
    (completion, embedding) when the bucket had any, else of the free probes (health, auth).
    Over a bucket of several hours, percentiles are the ok-weighted mean of the hourly ones.
    """

    at: float
    host: str
    probes: int
    ok: int
    availability: float | None
    ttft_ms_p50: float | None
    ttft_ms_p95: float | None
    latency_ms_p50: float | None


@dataclass(frozen=True, slots=True)
class StoreStats:
    """The writer's state. Every probe result submitted is written (`rows_written`), waiting
    (`queue_depth`) or dropped (`dropped`, and by reason in `dropped_by_reason`: `queue_full`,
    `unstorable`, `rejected` by the database for its data, `duplicate` key, `shutdown`; see
    monitor.store.writer). A failing database drops nothing until the queue is full. Host facts
    never written are counted apart (`facts_dropped_by_reason`: see monitor.store.facts)."""

    rows_written: int
    write_errors: int
    dropped: int
    queue_depth: int
    healthy: bool
    last_error: str | None
    dropped_by_reason: Mapping[str, int] = field(default_factory=dict)
    facts_dropped_by_reason: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class VantageInfo:
    """A vantage that wrote results to the database, with its newest result's start (epoch s)."""

    name: str
    last_result_at: float | None
