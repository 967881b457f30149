"""Recent incidents: hosts going down or coming back, best-host changes and certificate changes,
newest first.

Kept in memory (bounded, 7 days): the monitor notes them as they happen; the page reads a copy.
With a database (`keep_incidents`) the leader stores them and every process reads them back at
start, so a restart keeps them; a follower shows the leader's, read again every few seconds.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Literal, Protocol, cast, runtime_checkable

from monitor.core.clock import Clock
from monitor.core.results import HostState, Outcome
from monitor.logging import get_logger
from monitor.store.errors import StoreError
from monitor.store.incidents import StoredIncident

if TYPE_CHECKING:
    from monitor.core.health import HostHealth
    from monitor.parts.best_hosts import BestChanged
    from monitor.parts.certs import CertChanged

log = get_logger("monitor.web.status")

KEEP_S: Final = 7 * 86400.0
KEEP_EVERY_S: Final = 5.0  # how often the leader stores new incidents and a follower reads them
MAX_KEPT: Final = 5000  # a flapping fleet must not grow this without bound

IncidentKind = Literal["down", "up", "best", "cert"]


@dataclass(frozen=True, slots=True)
class Incident:
    at: float
    kind: IncidentKind
    model: str
    host: str | None  # the host that changed state, or the new best (None: no healthy host)
    # Why a host went down; for a certificate change, `tls_error` when the key is withheld (pinned).
    reason: Outcome | None = None
    previous: str | None = None  # the previous best host


class IncidentLog:
    def __init__(self) -> None:
        self._items: deque[Incident] = deque(maxlen=MAX_KEPT)
        self._unsaved: deque[Incident] = deque(maxlen=MAX_KEPT)  # noted, not stored yet
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

    def note_cert(self, event: CertChanged) -> None:
        """A subscriber of `Certificates`: a host showed another certificate."""
        withheld = None if event.trusted else Outcome.TLS_ERROR
        self._add(Incident(event.at, "cert", event.model, event.host, withheld))

    def _add(self, incident: Incident) -> None:
        self._items.append(incident)
        self._unsaved.append(incident)
        self.version += 1

    def take_unsaved(self) -> list[Incident]:
        """The incidents noted since the last call (to store); `put_back` if storing failed."""
        items = list(self._unsaved)
        self._unsaved.clear()
        return items

    def put_back(self, items: Sequence[Incident]) -> None:
        self._unsaved.extendleft(reversed(items))

    def load(self, stored: Iterable[Incident]) -> None:
        """Replace the list with `stored` (oldest first) plus what is noted and not stored yet."""
        merged = sorted({*stored, *self._unsaved}, key=lambda i: i.at)
        self._items = deque(merged, maxlen=MAX_KEPT)
        self.version += 1

    def recent(self, now: float, model: str | None = None) -> tuple[Incident, ...]:
        """The last 7 days' incidents (of one model), newest first."""
        since = now - KEEP_S
        while self._items and self._items[0].at < since:
            self._items.popleft()
        return tuple(i for i in reversed(self._items) if model is None or i.model == model)


@runtime_checkable
class IncidentStore(Protocol):
    async def record_incidents(self, items: Sequence[StoredIncident]) -> None: ...

    async def load_incidents(self, since: float, vantage: str | None = None) -> list[StoredIncident]: ...


def _stored(i: Incident) -> StoredIncident:
    return StoredIncident(i.at, i.kind, i.model, i.host, i.reason, i.previous)


def _incident(s: StoredIncident) -> Incident:
    return Incident(s.at, cast(IncidentKind, s.kind), s.model, s.host, s.reason, s.previous)


async def sync_incidents(
    incidents: IncidentLog, store: IncidentStore, leading: bool, now: float, loaded: bool
) -> None:
    """One turn of `keep_incidents`: a follower (or a process that has not read them yet) reads
    the stored incidents; the leader stores what it noted since. StoreError: nothing was lost."""
    if not leading:
        incidents.take_unsaved()  # the leader stores its own notes of the same changes
    if not leading or not loaded:
        incidents.load([_incident(s) for s in await store.load_incidents(now - KEEP_S)])
    if leading:
        items = incidents.take_unsaved()
        try:
            await store.record_incidents([_stored(i) for i in items])
        except BaseException:
            incidents.put_back(items)
            raise


async def keep_incidents(
    incidents: IncidentLog, store: IncidentStore, leading: Callable[[], bool], clock: Clock
) -> None:
    """Read the stored incidents back, then store new ones (the leader) or read them again (a
    follower) every `KEEP_EVERY_S`. A database failure is logged once and tried again."""
    loaded = failing = False
    while True:
        lead = leading()
        try:
            await sync_incidents(incidents, store, lead, clock.time(), loaded)
            loaded, failing = True, False
        except StoreError as exc:
            if not failing:
                log.warning("could not store or read the status page's incidents", error=str(exc))
            failing = True
        await clock.sleep(KEEP_EVERY_S)


async def save_incidents(incidents: IncidentLog, store: IncidentStore, timeout_s: float) -> None:
    """At stop: store what the leader noted since the last turn, within `timeout_s`."""
    items = incidents.take_unsaved()
    if not items:
        return
    try:
        async with asyncio.timeout(timeout_s):
            await store.record_incidents([_stored(i) for i in items])
    except (StoreError, TimeoutError):
        log.warning("incidents of the last seconds not stored at stop", incidents=len(items))
