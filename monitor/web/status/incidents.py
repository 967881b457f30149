"""Recent incidents: hosts going down or coming back, and best-host changes, newest first.

Kept in memory (bounded, 7 days): the monitor notes them as they happen; the page reads a copy.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Literal

from monitor.core.results import HostState, Outcome

if TYPE_CHECKING:
    from monitor.core.health import HostHealth
    from monitor.parts.best_hosts import BestChanged

KEEP_S: Final = 7 * 86400.0
MAX_KEPT: Final = 5000  # a flapping fleet must not grow this without bound

IncidentKind = Literal["down", "up", "best"]


@dataclass(frozen=True, slots=True)
class Incident:
    at: float
    kind: IncidentKind
    model: str
    host: str | None  # the host that changed state, or the new best (None: no healthy host)
    reason: Outcome | None = None  # why a host went down
    previous: str | None = None  # the previous best host


class IncidentLog:
    def __init__(self) -> None:
        self._items: deque[Incident] = deque(maxlen=MAX_KEPT)
        self._served: set[str] = set()  # models that had a best host since the start
        self.version = 0

    def state_changed(
        self, at: float, model: str, host: str, before: HostState, after: HostState, reason: Outcome
    ) -> None:
        """A host's state changed: going down is an incident (from any state, so a host that is
        down from the start is listed), coming back only from down (a new host's first success
        is no news)."""
        if after is HostState.DOWN and before is not HostState.DOWN:
            self._add(Incident(at, "down", model, host, reason))
        elif after is HostState.UP and before is HostState.DOWN:
            self._add(Incident(at, "up", model, host))

    def best_changed(self, at: float, model: str, previous: str | None, host: str | None) -> None:
        """The best host of a model changed. A model's first best host since the start is its
        first choice, not a change (after a restart, the restored best is the previous one)."""
        first = previous is None and model not in self._served
        if host is not None:
            self._served.add(model)
        if previous != host and not first:
            self._add(Incident(at, "best", model, host, previous=previous))

    def note_state(self, before: HostHealth, after: HostHealth, at: float) -> None:
        """A subscriber of the recorder's state changes."""
        self.state_changed(at, after.model, after.host, before.state, after.state, after.reason)

    def note_best(self, event: BestChanged) -> None:
        """A subscriber of `BestHosts`: a model's first choice since the start is no incident."""
        if event.known:
            self.best_changed(event.at, event.model, event.previous, event.host)

    def _add(self, incident: Incident) -> None:
        self._items.append(incident)
        self.version += 1

    def recent(self, now: float, model: str | None = None) -> tuple[Incident, ...]:
        """The last 7 days' incidents (of one model), newest first."""
        since = now - KEEP_S
        while self._items and self._items[0].at < since:
            self._items.popleft()
        return tuple(i for i in reversed(self._items) if model is None or i.model == model)
