"""What the service's parts need of the store, as protocols: each part names the few methods it
calls, so it depends on neither the store's layout nor a database (tests hand in fakes)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncEngine

from monitor.core.host_facts import StoredFact
from monitor.core.keys import HostKey
from monitor.core.maintenance import Window
from monitor.core.membership import MembershipChange
from monitor.core.results import Evidence, ProbeResult
from monitor.store import DiscoveryRecord, FactRows, HistoryPoint, StoreStats, VantageInfo


class ResultSink(Protocol):
    """Where probe results are written (the store's writer): never blocks, never raises."""

    def submit(self, result: ProbeResult) -> None: ...


class FactSink(Protocol):
    """Where host facts are written (the store's `host_facts`): never blocks, never raises."""

    def submit_fact(self, fact: StoredFact) -> None: ...


class StateWriter(Protocol):
    """The service's own records; each raises `StoreError` when the write fails."""

    async def record_discovery(self, record: DiscoveryRecord) -> None: ...
    async def record_membership(self, events: Sequence[MembershipChange]) -> None: ...
    async def save_best(self, model: str, host: str | None, at: float) -> None: ...


class StateReader(Protocol):
    """What a restart reads back; each raises `StoreError` when the read fails."""

    async def load_members(self) -> dict[str, set[str]]: ...
    async def load_recent_evidence(
        self, since: float, per_host_limit: int = 200
    ) -> list[tuple[HostKey, Evidence]]: ...
    async def load_best(self) -> dict[str, str | None]: ...


class Maintenance(Protocol):
    async def rollup(self, now: float, ttft_ms: float = ...) -> int: ...
    async def apply_retention(self, now: float, raw_days: float = 7, rollup_days: float = 400) -> int: ...


class WindowReader(Protocol):
    """The maintenance windows (`monitor.parts.windows`); raises `StoreError` when the read fails."""

    async def load_windows(self, since: float | None = None) -> list[Window]: ...


class StoreHealth(Protocol):
    @property
    def stats(self) -> StoreStats: ...


class HistoryReader(Protocol):
    """`/v1/history`'s read; raises `StoreError` when the database cannot answer."""

    async def history(
        self, model: str, host: str | None, since: float, until: float, step_s: int
    ) -> list[HistoryPoint]: ...


class VantageReads(Protocol):
    """Reads of any vantage's records (another vantage's answers); each raises `StoreError`."""

    async def vantages(self) -> list[VantageInfo]: ...
    async def load_members(self, vantage: str | None = None) -> dict[str, set[str]]: ...
    async def load_recent_evidence(
        self, since: float, per_host_limit: int = 200, vantage: str | None = None
    ) -> list[tuple[HostKey, Evidence]]: ...
    async def load_best(self, vantage: str | None = None) -> dict[str, str | None]: ...
    async def load_facts(self, vantage: str | None = None) -> FactRows: ...


class EngineHolder(Protocol):
    """The database itself, for read-only pages that query it directly (the status page)."""

    @property
    def engine(self) -> AsyncEngine: ...


class SharedDatabase(EngineHolder, Protocol):
    """The database a follower reads its leader's writes from, and the vantage they are of."""

    @property
    def vantage(self) -> str: ...


class ServiceStore(
    ResultSink,
    FactSink,
    StateWriter,
    VantageReads,  # before StateReader: its reads take a vantage, and so satisfy StateReader's
    StateReader,
    SharedDatabase,
    Maintenance,
    WindowReader,
    StoreHealth,
    HistoryReader,
    Protocol,
):
    """Everything the running service uses of `monitor.store.Store`."""
