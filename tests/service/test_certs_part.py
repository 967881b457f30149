"""The certificates part (monitor.parts.certs): a change is announced once, what it saw goes to
the database, and pins accepted in the database are taken on the next read."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from structlog.testing import capture_logs

from monitor.core.certs import HostCert, PeerCert
from monitor.core.clock import FakeClock
from monitor.parts.certs import CertChanged, Certificates
from monitor.store import StoreError

H = "https://a.example"
T0 = 1_700_000_000.0
OLD, NEW = PeerCert("a" * 64, None), PeerCert("b" * 64, None)


class _Store:
    def __init__(self) -> None:
        self.rows: dict[str, HostCert] = {}
        self.failing = False

    async def save_certs(self, records: Sequence[HostCert]) -> None:
        if self.failing:
            raise StoreError("saving certificates failed: disk full")
        for r in records:
            kept = self.rows.get(r.host)
            pinned = kept.pinned if kept is not None and kept.pinned is not None else r.pinned
            self.rows[r.host] = HostCert(r.host, r.sha256, r.not_after, r.seen_at, r.changed_at, pinned)

    async def load_certs(self) -> list[HostCert]:
        return list(self.rows.values())


def _part(pinning: bool, store: _Store | None = None) -> tuple[Certificates, list[CertChanged]]:
    part = Certificates(pinning, store, FakeClock())
    events: list[CertChanged] = []
    part.subscribe(events.append)
    return part, events


def test_a_change_is_logged_and_announced_once() -> None:
    part, events = _part(pinning=False)
    with capture_logs() as logs:
        part.seen(H, "m", OLD, T0)
        for i in range(3):
            part.seen(H, "m", NEW, T0 + 1 + i)
    assert [(e.host, e.previous, e.sha256, e.trusted) for e in events] == [(H, OLD.sha256, NEW.sha256, True)]
    assert [e["event"] for e in logs if e["event"] == "certificate changed"] == ["certificate changed"]


def test_without_pinning_no_request_carries_a_pin() -> None:
    part, _ = _part(pinning=False)
    part.seen(H, "m", OLD, T0)
    assert part.pin(H) is None


async def test_a_pin_accepted_in_the_database_is_taken_on_the_next_read() -> None:
    store = _Store()
    part, events = _part(pinning=True, store=store)
    part.seen(H, "m", OLD, T0)
    part.seen(H, "m", NEW, T0 + 1)
    assert part.pin(H) == OLD.sha256 and not events[0].trusted
    await part.refresh()
    updated: list[set[str]] = []
    part.on_update(updated.append)
    store.rows[H] = HostCert(H, NEW.sha256, None, T0 + 1, T0 + 1, NEW.sha256)  # certs accept
    await part.refresh()
    assert part.pin(H) == NEW.sha256 and part.records[H].trusted
    assert updated == [{H}]


async def test_what_was_not_saved_while_the_database_failed_is_saved_later() -> None:
    store = _Store()
    part, _ = _part(pinning=True, store=store)
    store.failing = True
    part.seen(H, "m", OLD, T0)
    await part.refresh()
    assert store.rows == {}
    store.failing = False
    await part.refresh()
    assert store.rows[H].pinned == OLD.sha256


async def test_a_follower_shows_what_the_leader_saved() -> None:
    store = _Store()
    store.rows[H] = HostCert(H, NEW.sha256, None, T0, T0, None)
    part, _ = _part(pinning=False, store=store)
    await part.refresh()
    assert part.records[H].sha256 == NEW.sha256


@pytest.mark.parametrize("pinning", [False, True])
def test_a_hosts_first_certificate_is_no_change(pinning: bool) -> None:
    part, events = _part(pinning=pinning)
    part.seen(H, "m", OLD, T0)
    assert events == []
