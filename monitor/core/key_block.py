"""Whether the monitor's own key is blocked (a 403 with a reason), as a pure decision.

A gateway or host that answers a known key 403 with a reason (no credits, a limit reached, the key
disabled) says the key may not spend: the outcome `key_blocked`, which is no evidence about the host
(`monitor.core.health.NEUTRAL_OUTCOMES`). The block lasts until a request with the key succeeds.
"""

from __future__ import annotations

from typing import Final

from monitor.core.results import Outcome, ProbeKind

__all__ = ["BLOCKED", "blocked_after"]

BLOCKED: Final = "key blocked"  # the reason when none was given
# Kinds whose success proves the key may spend (a paths probe can be answered before the key check).
_CLEARING: Final = frozenset(
    {ProbeKind.COMPLETION, ProbeKind.EMBEDDING, ProbeKind.THROUGHPUT, ProbeKind.AUTH}
)


def blocked_after(current: str | None, kind: ProbeKind | None, outcome: Outcome, reason: str) -> str | None:
    """The block's reason after one answer to a request with the key (`kind` None: the gateway's
    key check); None once the key is not blocked."""
    if outcome is Outcome.KEY_BLOCKED:
        return reason or BLOCKED
    if outcome is Outcome.OK and (kind is None or kind in _CLEARING):
        return None
    return current
