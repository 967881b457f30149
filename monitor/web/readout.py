"""What the HTTP API and /metrics read of the running service: a narrow, read-only interface.

They depend on this protocol, not on `monitor.service.Monitor`, so they can be tested (and served)
from any source of snapshots, and the service's insides can change without touching them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from monitor.core.clock import Clock
from monitor.core.slo import Objectives, WindowCounts
from monitor.core.snapshot import Snapshot
from monitor.parts.dispatcher import SchedulerStats
from monitor.parts.ports import HistoryReader
from monitor.parts.readiness import Readiness
from monitor.store import StoreStats, VantageInfo


@dataclass(frozen=True, slots=True)
class Counters:
    """The live counters /metrics reads at scrape time (references, not copies)."""

    probes: Mapping[tuple[str, str, str, str], int]  # (model, host, kind, outcome) -> probes
    scheduler: SchedulerStats  # its max lag is reset by each scrape that reads it
    targets: Callable[[], int]  # scheduled probe targets
    store: Callable[[], StoreStats | None]  # None without a database
    started_at: float
    version: str
    # (model, slo) -> good and all events since start; see `monitor.core.slo`.
    slo_good: Mapping[tuple[str, str], int] = field(default_factory=dict)
    slo_total: Mapping[tuple[str, str], int] = field(default_factory=dict)
    objectives: Objectives = field(default_factory=Objectives)
    notifications: Mapping[str, int] = field(default_factory=dict)  # state -> messages
    # The store's counts over the error budget's window (None: no database, or not read yet).
    slo_window: Callable[[], WindowCounts | None] = lambda: None
    key_blocked: Callable[[], str | None] = lambda: None  # why the key is blocked (KeyWatch), or None


class Readout(Protocol):
    @property
    def snapshot(self) -> Snapshot:
        """The current snapshot (swapped whole, never edited)."""
        ...

    @property
    def counters(self) -> Counters: ...

    @property
    def clock(self) -> Clock:
        """The service's clock ("now" of a history query, the age of the host list)."""
        ...

    @property
    def history(self) -> HistoryReader | None:
        """The store's history reads; None without a database."""
        ...

    def readiness(self) -> Readiness: ...


@runtime_checkable
class VantageSource(Protocol):
    """Vantages and their answers (the running service; a `Readout` without it answers for
    its own snapshot only)."""

    async def vantage_list(self) -> list[VantageInfo]:
        """Every vantage with results, this one included; raises `StoreError`."""
        ...

    async def vantage_snapshot(self, vantage: str) -> Snapshot:
        """`vantage`'s answers; raises ValueError (not a vantage name), LookupError (no such
        vantage) or `StoreError`."""
        ...
