"""The error budgets over 30 days, as the store counts them: read at start and then on the store
upkeep's schedule, by every replica (leader or follower), and kept in memory so that `/v1/slo`
and the status page never wait for the database. While the database fails the last counts read
stay (logged once)."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from monitor.core.clock import Clock
from monitor.core.slo import WINDOW_DAYS, Objectives, WindowCounts
from monitor.parts.maintenance import ROLLUP_EVERY_S
from monitor.parts.readback import ReadBack


@runtime_checkable
class SloWindowReader(Protocol):
    """The store's SLO counts of a window; raises `StoreError` when the read fails."""

    async def slo_window(self, now: float, ttft_ms: float = ..., days: float = ...) -> WindowCounts: ...


class StoredBudgets(ReadBack):
    def __init__(self, store: SloWindowReader, objectives: Objectives, clock: Clock) -> None:
        self._store = store
        self._objectives = objectives
        self.counts: WindowCounts | None = None  # None until the first read succeeds
        # Read after each roll-up's period: the counts move little in between.
        super().__init__(clock, ROLLUP_EVERY_S, "error budgets not read: the last ones read stay")

    async def run_forever(self, *, now: bool = True) -> None:
        """Read now (in the background: not at start), then on the roll-ups' period."""
        await super().run_forever(now=now)

    async def _read(self) -> None:
        self.counts = await self._store.slo_window(self._clock.time(), self._objectives.ttft_ms, WINDOW_DAYS)
