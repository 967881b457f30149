"""Values that cross module lines: what a probe found, and the names the contract gives it."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from libertai_failover.outcomes import Outcome, ProbeKind, classify_status, error_status_outcome
from monitor.core.identity import Fingerprint
from monitor.core.paths import Paths
from monitor.core.throughput import Throughput

__all__ = [
    "Evidence",
    "HostState",
    "Outcome",
    "ProbeKind",
    "ProbeResult",
    "classify_status",
    "error_status_outcome",
]


class HostState(enum.StrEnum):
    UP = "up"
    DOWN = "down"
    UNKNOWN = "unknown"
    UNTRUSTED = "untrusted"


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """One probe of one (model, host). Times are wall-clock epoch seconds; durations milliseconds.

    `model` is the id probed (a base id, never a `-thinking` alias). `detail` is a short,
    secret-free description for logs (never a response body, never a header). `throughput` is
    what a throughput probe that ended `ok` measured (None for every other result);
    `fingerprint` likewise for an identity probe, and `paths` what a paths probe learnt.
    """

    model: str
    host: str
    kind: ProbeKind
    outcome: Outcome
    started_at: float
    status: int | None = None
    connect_ms: float | None = None
    ttft_ms: float | None = None
    total_ms: float | None = None
    detail: str = ""
    throughput: Throughput | None = None
    fingerprint: Fingerprint | None = None  # what an identity probe that ended `ok` read
    paths: Paths | None = None

    @property
    def ok(self) -> bool:
        return self.outcome is Outcome.OK


# What health reads of a probe result, (started_at, kind, outcome, ttft_ms, total_ms): a restart
# reads hundreds of thousands of them from the store without building a ProbeResult for each.
Evidence = tuple[float, ProbeKind, Outcome, float | None, float | None]
