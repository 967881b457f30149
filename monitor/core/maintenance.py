"""Maintenance windows: when a host (or every host of a model) is taken out of routing. Pure.

A window covers a host (every model it serves), a model (every host of it), or both, from
`starts_at` until `ends_at`, or until `ended_at` when an operator ended it early. A host in a
window is drained: never best, never a candidate, never a fallback, while its probes go on so that
its state is known when the window ends. Times are epoch seconds; a window is in force for
`starts_at <= t < until`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from monitor.core.keys import HostKey

__all__ = ["Drain", "Window", "drains", "in_maintenance", "maintenance_of"]


@dataclass(frozen=True, slots=True)
class Window:
    id: int
    host: str | None  # None: every host of `model`
    model: str | None  # None: every model of `host`
    starts_at: float
    ends_at: float
    reason: str
    ended_at: float | None = None  # ended early by an operator

    @property
    def until(self) -> float:
        """When the window stops being in force."""
        return self.ends_at if self.ended_at is None else min(self.ends_at, self.ended_at)

    def in_force(self, now: float) -> bool:
        return self.starts_at <= now < self.until

    def covers(self, key: HostKey) -> bool:
        if self.host is None and self.model is None:
            return False  # a window names what it covers: never the whole fleet by accident
        return (self.host is None or self.host == key.host) and (
            self.model is None or self.model == key.model
        )

    def state(self, now: float) -> str:
        """ "scheduled", "active" or "over", as `maintenance list` shows it."""
        if now < self.starts_at and now < self.until:
            return "scheduled"
        return "active" if self.in_force(now) else "over"


@dataclass(frozen=True, slots=True)
class Drain:
    """Why a host is out of routing now, and until when (the latest end of its windows in force)."""

    reason: str
    until: float


def maintenance_of(windows: Iterable[Window], key: HostKey, now: float) -> Drain | None:
    """The drain of `key` at `now`: None when no window in force covers it."""
    found = [w for w in windows if w.in_force(now) and w.covers(key)]
    if not found:
        return None
    last = max(found, key=lambda w: (w.until, w.id))
    return Drain(last.reason, last.until)


def in_maintenance(windows: Iterable[Window], key: HostKey, now: float) -> bool:
    return maintenance_of(windows, key, now) is not None


def drains(
    windows: Iterable[Window],
    model: str,
    hosts: Iterable[str],
    now: float,
    aliases: Mapping[str, str] | None = None,
) -> dict[str, Drain]:
    """host -> its drain, for the hosts of base model `model` that a window in force covers. A
    window naming an alias of `model` (`aliases`: alias -> base id) covers the base's hosts."""
    named = {model} | {a for a, base in (aliases or {}).items() if base == model}
    relevant = [w for w in windows if w.in_force(now) and (w.model is None or w.model in named)]
    if not relevant:
        return {}
    out: dict[str, Drain] = {}
    for host in hosts:
        found = [d for d in (maintenance_of(relevant, HostKey(m, host), now) for m in named) if d is not None]
        if found:
            out[host] = max(found, key=lambda d: d.until)
    return out
