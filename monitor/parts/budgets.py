"""The error budgets over 30 days, as the store counts them: read at start and then on the store
upkeep's schedule, by every replica (leader or follower), and kept in memory so that `/v1/slo`
and the status page never wait for the database. While the database fails the last counts read
stay (logged once)."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from monitor.core.clock import Clock
from monitor.core.slo import WINDOW_DAYS, Objectives, WindowCounts
from monitor.logging import get_logger
from monitor.parts.maintenance import ROLLUP_EVERY_S
from monitor.store import StoreError

log = get_logger("monitor.service")  # the service's parts log under one name


@runtime_checkable
class SloWindowReader(Protocol):
    """The store's SLO counts of a window; raises `StoreError` when the read fails."""

    async def slo_window(self, now: float, ttft_ms: float = ..., days: float = ...) -> WindowCounts: ...


class StoredBudgets:
    def __init__(self, store: SloWindowReader, objectives: Objectives, clock: Clock) -> None:
        self._store = store
        self._objectives = objectives
        self._clock = clock
        self.counts: WindowCounts | None = None  # None until the first read succeeds
        self._failing = False

    async def refresh(self) -> None:
        """Read the window's counts again; on a database failure keep the last ones."""
        try:
            self.counts = await self._store.slo_window(
                self._clock.time(), self._objectives.ttft_ms, WINDOW_DAYS
            )
        except StoreError as error:
            if not self._failing:
                log.warning("error budgets not read: the last ones read stay", error=str(error))
            self._failing = True
            return
        self._failing = False

    async def run_forever(self) -> None:
        """Refresh now, then after each roll-up's period (the counts move little in between)."""
        while True:
            await self.refresh()
            await self._clock.sleep(ROLLUP_EVERY_S)
