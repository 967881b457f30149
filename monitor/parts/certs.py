"""The certificates HTTPS hosts show, in memory and in the database: the prober reports each one
seen on a new connection (`seen`) and asks for a host's pin before a keyed request (`pin`); the
decisions are `monitor.core.certs`'. A change is logged once and handed to the subscribers (the
status page's incidents).

Every replica reads the records back every `REFRESH_EVERY_S`: a follower shows the leader's, and
every one takes the pins from the database, where `libertai-monitor certs accept HOST` changes
them. While the database fails, the last records stay and unsaved ones are written later.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final, Protocol, runtime_checkable

from monitor.core.certs import HostCert, PeerCert, observe
from monitor.core.clock import Clock
from monitor.logging import get_logger
from monitor.parts.readback import ReadBack

log = get_logger("monitor.service")  # the service's parts log under one name

# How soon an accepted certificate (and a follower's view of a change) is seen by every replica.
REFRESH_EVERY_S: Final = 10.0


@runtime_checkable
class CertStore(Protocol):
    """The certificates' table (`monitor.store.certs`); each raises `StoreError` on failure."""

    async def save_certs(self, records: Sequence[HostCert]) -> None: ...
    async def load_certs(self) -> list[HostCert]: ...


@dataclass(frozen=True, slots=True)
class CertChanged:
    at: float
    model: str  # the model the host was probed for when the change was seen
    host: str
    previous: str  # SHA-256 (hex) before
    sha256: str
    trusted: bool  # False: pinned, and the key is withheld until accepted


class Certificates(ReadBack):
    def __init__(self, pinning: bool, store: CertStore | None, clock: Clock) -> None:
        self.pinning = pinning
        self._store = store
        self.records: dict[str, HostCert] = {}
        self._unsaved: dict[str, HostCert] = {}
        self._listeners: list[Callable[[CertChanged], None]] = []
        self._on_update: list[Callable[[set[str]], None]] = []
        super().__init__(clock, REFRESH_EVERY_S, "certificates not stored or read: the last ones stay")

    def subscribe(self, listener: Callable[[CertChanged], None]) -> None:
        """Call `listener` on every change of a host's certificate."""
        self._listeners.append(listener)

    def on_update(self, listener: Callable[[set[str]], None]) -> None:
        """Call `listener(hosts)` when records read back from the database differ (to render them)."""
        self._on_update.append(listener)

    def pin(self, host: str) -> str | None:
        if not self.pinning:
            return None
        record = self.records.get(host)
        return None if record is None else record.pinned

    def seen(self, host: str, model: str, cert: PeerCert, at: float) -> None:
        previous = self.records.get(host)
        record, changed = observe(previous, host, cert, at, self.pinning)
        self.records[host] = record
        if previous is None or record.sha256 != previous.sha256 or record.pinned != previous.pinned:
            self._unsaved[host] = record
        if not changed or previous is None:
            return
        log.warning(
            "certificate changed",
            host=host,
            previous=previous.sha256,
            sha256=record.sha256,
            key_withheld=not record.trusted,
        )
        event = CertChanged(at, model, host, previous.sha256, record.sha256, record.trusted)
        for listener in self._listeners:
            listener(event)

    async def sync(self) -> None:
        """Write what changed since the last turn, then read every record back (StoreError: the
        unsaved records are kept for the next turn)."""
        if self._store is None:
            return
        unsaved = dict(self._unsaved)
        self._unsaved.clear()
        try:
            await self._store.save_certs(list(unsaved.values()))
        except BaseException:
            self._unsaved = unsaved | self._unsaved
            raise
        stored = await self._store.load_certs()
        updated: set[str] = set()
        for record in stored:
            if record.host in self._unsaved:  # seen again meanwhile: the newer one stays
                continue
            if self.records.get(record.host) != record:
                self.records[record.host] = record
                updated.add(record.host)
        if updated:
            for listener in self._on_update:
                listener(updated)

    async def _read(self) -> None:
        await self.sync()
