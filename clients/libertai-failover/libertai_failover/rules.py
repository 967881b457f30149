"""The failover rules as pure functions: which hosts to try in which order, which answers to pass
over, and what body a host gets. Shared by the sync and async transports; no I/O, no clock."""

from __future__ import annotations

import json
import ssl
from collections.abc import Callable, Container, Mapping
from typing import Any

import httpx2

from libertai_failover.answers import Answer
from libertai_failover.outcomes import Outcome, error_status_outcome

__all__ = ["error_reason", "host_body", "order_hosts", "read_model", "retry_reason", "status_reason"]


def read_model(content_type: str | None, body: bytes) -> tuple[str, dict[str, Any]] | None:
    """(model, parsed body) of a JSON request body that names a model; None for anything else,
    which then goes to the gateway unchanged."""
    if not body or (content_type is not None and "json" not in content_type.lower()):
        return None
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(data, dict):
        return None
    model = data.get("model")
    if not isinstance(model, str) or not model or len(model) > 256:
        return None
    return model, data


def order_hosts(
    answer: Answer,
    sticky: str | None,
    penalised: Container[str],
    admits: Callable[[str], bool],
) -> tuple[str, ...]:
    """Hosts to try before the gateway: the sticky host first while the monitor sees it up (a
    switch would lose the server's KV cache), then the answer's order; hosts that failed here
    lately after the others; hosts the allow-list refuses never (they would get the key)."""
    hosts = [h for h in answer.order if admits(h)]
    if sticky is not None and sticky in answer.up and admits(sticky):
        hosts = [sticky, *(h for h in hosts if h != sticky)]
    fresh = [h for h in hosts if h not in penalised]
    return (*fresh, *(h for h in hosts if h in penalised))


def host_body(data: Mapping[str, Any], upstream_model: str, fields: Mapping[str, Any]) -> bytes:
    """The body a host gets: the id it knows, and the answer's extra fields under the caller's own
    (a caller that sets `chat_template_kwargs.enable_thinking` itself keeps its choice)."""
    out: dict[str, Any] = dict(data)
    for key, value in fields.items():
        mine = out.get(key)
        if isinstance(value, Mapping) and isinstance(mine, Mapping):
            out[key] = {**value, **mine}
        elif key not in out:
            out[key] = value
    out["model"] = upstream_model
    return json.dumps(out, separators=(",", ":"), ensure_ascii=False).encode()


def status_reason(status: int) -> Outcome:
    if status < 300:
        return Outcome.OK
    if status < 400:
        return Outcome.BAD_RESPONSE  # a redirect: an inference host has no reason to send one
    return error_status_outcome(status)


# Passed over where no answer has begun: the next host may well serve it. 401/403 from a host is a
# key not (yet) distributed to it; a redirect is never followed with the key to an unlisted place.
_RETRY = frozenset({Outcome.KEY_REJECTED, Outcome.RATE_LIMITED, Outcome.SERVER_ERROR, Outcome.BAD_RESPONSE})


def retry_reason(status: int) -> Outcome | None:
    """Why a host's answer with this status is passed over; None when it goes to the caller."""
    reason = status_reason(status)
    return reason if reason in _RETRY else None


def error_reason(exc: Exception) -> Outcome:
    """A transport error raised before the response headers (so no answer has begun)."""
    if isinstance(exc, httpx2.TimeoutException):
        return Outcome.TIMEOUT
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ssl.SSLError):
            return Outcome.TLS_ERROR
        cause = cause.__cause__ or cause.__context__
    return Outcome.CONNECT_ERROR
