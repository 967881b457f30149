"""Host certificates: what an HTTPS host showed, whether it changed, and whether the key may go to
it. Pure.

A host's record (`HostCert`) is per URL, whatever models it serves. `observe` folds in a
certificate seen on a new connection: a different SHA-256 fingerprint than the last one is a
change. With `pin_certificates` the first certificate a host shows is pinned (trusted on first
use); a host showing another one than its pin is not `trusted`, and keyed requests to it carry the
pin (`monitor.probe.prober`), so the key never reaches it until an operator accepts the new one
(`libertai-monitor certs accept HOST`, which makes the last one seen the pin).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

__all__ = ["HostCert", "PeerCert", "accept", "observe"]


@dataclass(frozen=True, slots=True)
class PeerCert:
    """A certificate as a connection showed it: its SHA-256 fingerprint (lowercase hex) and the end
    of its validity (epoch seconds; None when the handshake did not say)."""

    sha256: str
    not_after: float | None


@dataclass(frozen=True, slots=True)
class HostCert:
    """What one host showed last, since when, and its pin (None: not pinned)."""

    host: str
    sha256: str
    not_after: float | None
    seen_at: float
    changed_at: float | None = None  # the last change of fingerprint; None: never seen to change
    pinned: str | None = None

    @property
    def trusted(self) -> bool:
        """Whether the key may go to this host: it is not pinned, or shows its pin."""
        return self.pinned is None or self.pinned == self.sha256

    def as_json(self) -> dict[str, Any]:
        return {
            "sha256": self.sha256,
            "not_after": _iso(self.not_after),
            "changed_at": _iso(self.changed_at),
            "pinned": self.pinned,
            "trusted": self.trusted,
        }


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def observe(
    previous: HostCert | None, host: str, seen: PeerCert, at: float, pinning: bool
) -> tuple[HostCert, bool]:
    """The host's record after `seen` at `at`, and whether its certificate changed (a host's
    first certificate is no change). With `pinning`, an unpinned host pins what it shows."""
    if previous is None:
        return HostCert(host, seen.sha256, seen.not_after, at, None, seen.sha256 if pinning else None), False
    changed = seen.sha256 != previous.sha256
    pinned = previous.pinned if previous.pinned is not None or not pinning else seen.sha256
    record = replace(
        previous,
        sha256=seen.sha256,
        not_after=seen.not_after,
        seen_at=at,
        changed_at=at if changed else previous.changed_at,
        pinned=pinned,
    )
    return record, changed


def accept(record: HostCert) -> HostCert:
    """The record with the certificate it shows now as its pin (`certs accept`)."""
    return replace(record, pinned=record.sha256)
