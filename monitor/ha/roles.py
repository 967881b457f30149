"""This process's role, and the switch between them: a leader probes and writes, a follower reads
its leader's writes back (`Follower`) and does neither.

Leading: the follower stops after one last read (so the new leader starts from everything its
predecessor wrote, its first answers equal the last ones, and the dispatcher places each target's
next probe after the predecessor's last one), then the store's records are written again and the
leader's work starts. Following: the leader's work stops first (no probe, billed or free, from
then on), then records are no longer written and the follower starts. Both republish the snapshot
at once, so the answers and /metrics say the new role.
"""

from __future__ import annotations

from collections.abc import Callable

from monitor.core.snapshot import ServedBy
from monitor.core.steps import finish
from monitor.ha.duties import Duties
from monitor.ha.election import Role
from monitor.ha.follower import Follower, Mark
from monitor.logging import get_logger
from monitor.parts.persistence import Persistence
from monitor.parts.publisher import Publisher
from monitor.parts.target_runner import TargetRunner

log = get_logger("monitor.service")


class Roles:
    def __init__(
        self,
        vantage: str,
        duties: Duties,
        follower: Follower | None,
        persistence: Persistence | None,
        publisher: Publisher,
        target_runner: Callable[[], TargetRunner],
        *,
        elected: bool,
    ) -> None:
        self.vantage = vantage
        self._duties = duties
        self._follower = follower
        self._persistence = persistence
        self._publisher = publisher
        self._target_runner = target_runner
        # Elected: nothing probes before the lock is held. Otherwise (SQLite, no database) this
        # process is the only one and leads from the start.
        self.role = Role.FOLLOWER if elected else Role.LEADER
        self.closing = False  # set at stop: no role change starts anything after it
        publisher.served_by = self.served_by
        publisher.vantage = vantage

    @property
    def served_by(self) -> ServedBy:
        return ServedBy(self.vantage, self.role.value)

    async def lead(self) -> None:
        if self.closing:
            return
        if self._follower is not None:
            await self._follower.stop(catch_up=True)
        if self.closing:
            return
        if self._persistence is not None:
            self._persistence.writing = True
        self._duties.start(self._target_runner())
        self.role = Role.LEADER
        self._announce()

    async def follow(self, mark: Mark | None = None) -> None:
        await self._duties.stop()  # first: no probe after this
        if self._persistence is not None:
            self._persistence.writing = False
        self.role = Role.FOLLOWER
        self._announce()
        if self._follower is not None and not self.closing:
            self._follower.start(mark)

    async def on_change(self, role: Role) -> None:
        """The election's handler."""
        if role is Role.LEADER:
            await self.lead()
        else:
            await self.follow()

    async def close(self) -> None:
        """Stop whatever this process does in its role (at stop)."""
        self.closing = True
        await self._duties.stop()
        if self._follower is not None:
            await self._follower.stop(catch_up=False)

    def _announce(self) -> None:
        self._publisher.served_by = self.served_by
        self._publisher.vantage = self.vantage
        finish(self._publisher.publish(force=True))
        log.info("serving as " + self.role.value, vantage=self.vantage, role=self.role.value)
