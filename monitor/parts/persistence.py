"""The service's own records in the store: membership changes, best hosts, discovery runs.

Writes triggered on the event loop's hot path (a best host changed while publishing, hosts joined
while applying a list) run as background tasks, awaited at stop; a failed write is logged with the
store's reason and never stops the service (the store counts it, and /readyz reports it).
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Sequence
from typing import Any

from monitor.core.membership import MembershipChange
from monitor.logging import get_logger
from monitor.parts.best_hosts import BestChanged
from monitor.parts.ports import StateWriter
from monitor.store import DiscoveryRecord, StoreError

log = get_logger("monitor.service")

MEMBERSHIP_BATCH = 1000


class Persistence:
    def __init__(self, store: StateWriter) -> None:
        self._store = store
        self._writes: set[asyncio.Task[None]] = set()
        # False while this process follows a leader: the leader's records are the only ones.
        self.writing = True

    def best_changed(self, event: BestChanged) -> None:
        """Subscriber of `BestHosts`: save the new best host."""
        if self.writing:
            self._spawn(self._save_best(event.model, event.host, event.at))

    def members_changed(self, changes: Sequence[MembershipChange]) -> None:
        if changes and self.writing:
            self._spawn(self._record_membership(changes))

    async def discovery_ran(self, record: DiscoveryRecord) -> None:
        if not self.writing:
            return
        try:
            await self._store.record_discovery(record)
        except StoreError as exc:
            log.warning("could not record the discovery run", error=str(exc))

    async def drain(self, within_s: float) -> None:
        """Let the pending writes finish (at stop), for at most `within_s` seconds."""
        if self._writes:
            await asyncio.wait(self._writes, timeout=within_s)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)

    async def _record_membership(self, changes: Sequence[MembershipChange]) -> None:
        # In batches, one after the other: a listing of a huge fleet in one insert holds
        # the event loop for seconds (the rows are built and bound on it) and the database for
        # longer, so every other write waits and may time out ("database is locked").
        failed: list[str] = []
        for i in range(0, len(changes), MEMBERSHIP_BATCH):
            batch = changes[i : i + MEMBERSHIP_BATCH]
            try:
                await self._store.record_membership(batch)
            except StoreError as exc:
                failed.append(str(exc))
        if failed:
            log.warning("could not record membership changes", error=failed[0], batches_failed=len(failed))

    async def _save_best(self, model: str, host: str | None, at: float) -> None:
        try:
            await self._store.save_best(model, host, at)
        except StoreError as exc:
            log.warning("could not save the best host", model=model, error=str(exc))
