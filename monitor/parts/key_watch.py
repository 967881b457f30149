"""The monitor's own key, blocked or not: what every keyed answer said, logged once per change."""

from __future__ import annotations

from monitor.core.key_block import blocked_after
from monitor.core.results import Outcome, ProbeKind
from monitor.logging import get_logger

log = get_logger("monitor.service")  # the service's parts log under one name


class KeyWatch:
    """`blocked`: the reason the key is blocked (a sanitised, bounded message), or None."""

    def __init__(self) -> None:
        self.blocked: str | None = None

    def note(self, kind: ProbeKind | None, outcome: Outcome, reason: str, where: str) -> None:
        """Take in one answer to the key (`kind` None: the gateway's key check) from `where`."""
        after = blocked_after(self.blocked, kind, outcome, reason)
        if after == self.blocked:
            return
        before, self.blocked = self.blocked, after
        if after is not None:
            # Once per change: every probe with the key says the same until the key is unblocked.
            log.error("the API key is blocked; hosts are not blamed for it", reason=after, seen_at=where)
        elif before is not None:
            log.info("the API key is accepted again", seen_at=where)
