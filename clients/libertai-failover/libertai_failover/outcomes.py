"""The contract's outcome names and the one table from an HTTP status to an outcome, shared by the
monitor's probes, the failover client and the simulator's ground truth."""

from __future__ import annotations

import enum

__all__ = ["Outcome", "ProbeKind", "classify_status", "error_status_outcome"]


class Outcome(enum.StrEnum):
    """How one probe ended; the contract's OUTCOME names, exactly."""

    OK = "ok"
    TIMEOUT = "timeout"
    CONNECT_ERROR = "connect_error"
    TLS_ERROR = "tls_error"
    KEY_REJECTED = "key_rejected"  # 401/403
    PAYMENT_REQUIRED = "payment_required"  # 402
    UNKNOWN_MODEL = "unknown_model"  # 404 on a serving endpoint
    INVALID_REQUEST = "invalid_request"  # 422 (and other 4xx we did not expect)
    RATE_LIMITED = "rate_limited"  # 429
    SERVER_ERROR = "server_error"  # 5xx
    BAD_RESPONSE = "bad_response"  # unparseable, wrong shape, redirect, oversized body
    STREAM_ERROR = "stream_error"  # an error event, or a stream cut before [DONE]
    NOT_LOADED = "not_loaded"  # health answered 202
    UNSUPPORTED = "unsupported"  # 404/405 on an optional endpoint (a host's auth check)
    NOT_PROBED = "not_probed"  # untrusted, or not probed yet
    # 403 with a reason (no credits, a limit reached, the key disabled): the caller's key is
    # blocked, which says nothing of the host that answered.
    KEY_BLOCKED = "key_blocked"


class ProbeKind(enum.StrEnum):
    HEALTH = "health"  # GET /health/{model}: free
    AUTH = "auth"  # GET /libertai/auth/check on the host: free, often unsupported
    COMPLETION = "completion"  # streaming one-token chat completion: billed
    EMBEDDING = "embedding"  # one tiny embedding: billed
    # A streamed completion of a few tokens (billed), of up hosts only: what it measured is shown
    # and sorts hosts on request, but is never health evidence, and it is not stored.
    THROUGHPUT = "throughput"
    # A fixed prompt at temperature 0 with log-probabilities (billed, rare): whether the host
    # serves the model it is listed for. Not health evidence, not stored.
    IDENTITY = "identity"
    # Which API paths a host accepts: an invalid body on each optional path, refused before any
    # inference (free). Never health evidence, not stored.
    PATHS = "paths"


def classify_status(status: int, kind: ProbeKind) -> Outcome:
    """The outcome an HTTP status stands for, answering a request of `kind`: the one table of
    the probes, the failover client and the simulator's ground truth.

    `OK` means only that the status is the expected one; the caller still validates the body.
    """
    if status == 200:
        return Outcome.OK
    if status == 202 and kind is ProbeKind.HEALTH:
        return Outcome.NOT_LOADED
    if status < 100 or status >= 600 or status < 400:
        return Outcome.BAD_RESPONSE  # 1xx, other 2xx, 3xx (redirects are never followed), nonsense
    if status >= 500:
        return Outcome.SERVER_ERROR
    if status in (401, 403):
        # A health request carries no key, so its 401/403 cannot be about the key.
        return Outcome.INVALID_REQUEST if kind is ProbeKind.HEALTH else Outcome.KEY_REJECTED
    if status == 402:
        return Outcome.PAYMENT_REQUIRED
    if status == 404:
        return Outcome.UNSUPPORTED if kind is ProbeKind.AUTH else Outcome.UNKNOWN_MODEL
    if status == 405 and kind is ProbeKind.AUTH:
        return Outcome.UNSUPPORTED
    if status == 408:
        return Outcome.TIMEOUT  # the server gave up waiting for the request: a timeout
    if status == 429:
        return Outcome.RATE_LIMITED
    return Outcome.INVALID_REQUEST  # 422 and every other 4xx


def error_status_outcome(status: int) -> Outcome:
    """The outcome an inference host's error status (4xx, 5xx) to a completion stands for."""
    return classify_status(status, ProbeKind.COMPLETION)
