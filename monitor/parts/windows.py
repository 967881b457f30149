"""The maintenance windows in memory: read from the database at start and every `REFRESH_EVERY_S`
by every replica (leader or follower), so all of them drain the same hosts; the decisions are
`monitor.core.maintenance`'s. While the database fails the last windows read stay in force."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Final

from monitor.core.clock import Clock
from monitor.core.keys import HostKey
from monitor.core.maintenance import Drain, Window, drains, maintenance_of
from monitor.parts.ports import WindowReader
from monitor.parts.readback import ReadBack

# How soon a window added (or ended) by the `maintenance` command is in force on every replica.
REFRESH_EVERY_S: Final = 10.0


class MaintenanceWindows(ReadBack):
    def __init__(self, store: WindowReader | None, clock: Clock) -> None:
        self._store = store
        self.windows: tuple[Window, ...] = ()
        super().__init__(clock, REFRESH_EVERY_S, "maintenance windows not read: the last ones read stay")

    async def _read(self) -> None:
        """The windows not over yet."""
        if self._store is not None:
            self.windows = tuple(await self._store.load_windows(since=self._clock.time()))

    def maintenance_of(self, key: HostKey, now: float) -> Drain | None:
        """Why and until when `key` is out of routing at `now`; None: it is not."""
        return maintenance_of(self.windows, key, now)

    def in_maintenance(self, key: HostKey, now: float) -> bool:
        """Whether `key` is in a maintenance window at `now` (its failures are no news then)."""
        return self.maintenance_of(key, now) is not None

    def drains(
        self, model: str, hosts: Iterable[str], now: float, aliases: Mapping[str, str]
    ) -> dict[str, Drain]:
        """The hosts of base model `model` out of routing at `now`, with why (none: {} at once)."""
        if not self.windows:
            return {}
        return drains(self.windows, model, hosts, now, aliases)
