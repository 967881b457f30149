"""Whether the service is ready to be relied on (/readyz): a pure function of what it knows."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from monitor.core.results import Outcome
from monitor.store import StoreStats

_REJECTED = "rejected by the gateway"
_BLOCKED = "blocked: "


@dataclass(frozen=True, slots=True)
class Readiness:
    ready: bool
    checks: Mapping[str, str]  # check -> "ok" or what is wrong


def readiness(
    *,
    has_host_list: bool,
    key_set: bool,
    key_outcome: Outcome | None,
    store: StoreStats | None,
    key_blocked: str | None = None,
) -> Readiness:
    """Ready when a host list is known, the key is neither rejected by the gateway nor blocked
    (`blocked: REASON`, a 403 with a reason from the gateway or a host), and database writes (when
    there is a database) succeed."""
    checks: dict[str, str] = {}
    checks["discovery"] = "ok" if has_host_list else "no host list yet"
    if key_blocked is not None:
        checks["api_key"] = f"{_BLOCKED}{key_blocked}"
    elif key_outcome is Outcome.KEY_REJECTED:
        checks["api_key"] = _REJECTED
    elif not key_set:
        checks["api_key"] = "not set"
    else:
        checks["api_key"] = "ok" if key_outcome is Outcome.OK else f"unchecked ({key_outcome})"
    if store is not None:
        checks["database"] = "ok" if store.healthy else f"writes failing: {store.last_error or 'error'}"
    key_fails = checks["api_key"] == _REJECTED or checks["api_key"].startswith(_BLOCKED)
    ready = checks["discovery"] == "ok" and not key_fails
    ready = ready and checks.get("database", "ok") == "ok"
    return Readiness(ready, checks)
