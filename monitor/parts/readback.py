"""State every replica reads back from the database on a period (maintenance windows, certificate
pins, error budgets): a failed read keeps the last state read and is logged once, until a read
succeeds again; the next turn tries again, so a fault that clears needs no restart."""

from __future__ import annotations

from monitor.core.clock import Clock
from monitor.logging import get_logger
from monitor.store import StoreError

log = get_logger("monitor.service")  # the service's parts log under one name


class ReadBack:
    """A part whose `_read` loads its state from the database; `refresh` and `run_forever` drive it."""

    def __init__(self, clock: Clock, every_s: float, failed: str) -> None:
        self._clock = clock
        self._every_s = every_s
        self._failed = failed  # the log line of a failed read, said once per failing run
        self._failing = False

    async def _read(self) -> None:
        raise NotImplementedError

    async def refresh(self) -> None:
        """One read; a `StoreError` is logged once and leaves the last state in force."""
        try:
            await self._read()
        except StoreError as error:
            if not self._failing:
                log.warning(self._failed, error=str(error))
            self._failing = True
            return
        self._failing = False

    async def run_forever(self, *, now: bool = False) -> None:
        """Read every `every_s` seconds (`now`: first at once, for state not read at start)."""
        if now:
            await self.refresh()
        while True:
            await self._clock.sleep(self._every_s)
            await self.refresh()
