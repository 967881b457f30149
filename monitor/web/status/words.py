"""What the page says in words: states with a symbol (never colour alone), reasons, figures, ages."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final

from monitor.core.results import HostState, Outcome

# A symbol and a word per state: the page never tells states apart by colour alone.
STATE_LABEL: Final = {
    HostState.UP: ("✓", "up"),
    HostState.DOWN: ("✕", "down"),
    HostState.UNKNOWN: ("?", "unknown"),
    HostState.UNTRUSTED: ("⊘", "untrusted"),
}

REASON_WORDS: Final = {
    Outcome.OK: "serving",
    Outcome.TIMEOUT: "no answer within the probe timeout",
    Outcome.CONNECT_ERROR: "connection refused or host unreachable",
    Outcome.TLS_ERROR: "TLS certificate not trusted",
    Outcome.KEY_REJECTED: "key not distributed to this host (401/403)",
    Outcome.PAYMENT_REQUIRED: "payment required (402): the key has no credits",
    Outcome.UNKNOWN_MODEL: "model not found on this host (404)",
    Outcome.INVALID_REQUEST: "request refused as invalid (422)",
    Outcome.RATE_LIMITED: "rate limited (429)",
    Outcome.SERVER_ERROR: "server error (5xx)",
    Outcome.BAD_RESPONSE: "answer unreadable or of the wrong shape",
    Outcome.STREAM_ERROR: "stream broke off before its end",
    Outcome.NOT_LOADED: "health answered 202: model not loaded",
    Outcome.UNSUPPORTED: "endpoint not supported here",
    Outcome.NOT_PROBED: "not probed yet",
    Outcome.KEY_BLOCKED: "the monitor's key is blocked (403 with a reason)",
}


# A host's 401/403 while the gateway rejects the monitor's key: the key is at fault, not the host
# (the page's banner says so once).
KEY_REJECTED_BY_GATEWAY: Final = "refuses the monitor's key, which the gateway rejects too"


def reason_words(state: HostState, reason: Outcome, gateway_rejects_key: bool = False) -> str:
    if gateway_rejects_key and reason is Outcome.KEY_REJECTED:
        return KEY_REJECTED_BY_GATEWAY
    if state is HostState.UNTRUSTED:
        return "outside the allow-list: never probed"
    if state is HostState.UNKNOWN and reason is Outcome.OK:
        return "too few probes yet"
    return REASON_WORDS.get(reason, reason.value)


NONE = "\u2013"  # an en dash: no value


def ms(value: float | None) -> str:
    return NONE if value is None else f"{value:,.0f} ms"


def rate(value: float | None) -> str:
    return NONE if value is None else f"{value:,.1f} tok/s"


def pct(value: float | None) -> str:
    """Availability with as many decimals as it needs never to read 100% when it is not."""
    if value is None:
        return "no data"
    if value >= 1:
        return "100%"
    p = value * 100
    if p >= 99.99:
        return "99.99%"
    text = f"{p:.2f}".rstrip("0").rstrip(".")
    return f"{text}%"


def clock(ts: float | None) -> str:
    if ts is None:
        return "never"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def hour_label(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%b %-d %H:00")


def day_label(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%b %-d")


def ago(ts: float | None, now: float) -> str:
    """`12 s ago`, `5 min ago`, `3 h ago`, `2 d ago`; `never` for None."""
    if ts is None:
        return "never"
    s = max(0.0, now - ts)
    if s < 90:
        return f"{s:.0f} s ago"
    if s < 5400:
        return f"{s / 60:.0f} min ago"
    if s < 2 * 86400:
        return f"{s / 3600:.0f} h ago"
    return f"{s / 86400:.0f} d ago"
