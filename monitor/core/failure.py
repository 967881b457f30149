"""Why a host fails: its last failing probe's kind, HTTP status, a short error text and time.

A `Failure` is kept in memory with a host's health (`monitor.core.health`): the store keeps only
outcomes, so a host restored from the database has none until it fails again.

The error text comes from the probe result's `detail`, which the prober has already cleaned where
the text entered (the API key and its fragments, credentials and control characters removed,
truncated: `monitor.probe.classify.sanitise_detail`; never a header). Here it is only reduced to
what the host said (`HTTP 401: Invalid API key` -> `Invalid API key`; the status is a field of its
own) and bounded again, printable characters only, whatever produced the result.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Final

from monitor.core.results import Outcome, ProbeKind, ProbeResult

ERROR_MAX_CHARS: Final = 120
# What `/v1/hosts` and the status page say of a host that refuses the key when the gateway itself
# refuses it: the key is at fault, not the host.
GATEWAY_REJECTS_KEY: Final = "the monitor's API key is rejected by the gateway"

_HTTP_PREFIX = re.compile(r"HTTP \d{3}: ")


@dataclass(frozen=True, slots=True)
class Failure:
    """A failed probe: its kind, HTTP status (None: no answer, such as a connection error or a
    timeout), short error text, start time (epoch seconds; None when not known) and outcome."""

    kind: ProbeKind
    status: int | None
    error: str
    at: float | None
    outcome: Outcome


def short_error(detail: str, outcome: Outcome) -> str:
    """What the host said, without the `HTTP nnn: ` its status already gives; the outcome's name
    when the result says nothing more. Printable, at most `ERROR_MAX_CHARS` characters."""
    text = _HTTP_PREFIX.sub("", detail, count=1) if _HTTP_PREFIX.match(detail) else detail
    text = " ".join("".join(c if c.isprintable() else " " for c in text).split())
    if len(text) > ERROR_MAX_CHARS:
        text = text[: ERROR_MAX_CHARS - 3] + "..."
    return text or outcome.value


def failure_of(r: ProbeResult) -> Failure:
    """The failure a (failed) probe result reports."""
    return Failure(r.kind, r.status, short_error(r.detail, r.outcome), r.started_at, r.outcome)


def blamed(
    failure: Failure | None,
    reason: Outcome,
    key_ok: bool | None,
    gateway_rejects_key: bool,
    failing_kind: ProbeKind | None = None,
    failing_since: float | None = None,
) -> tuple[Failure | None, bool | None]:
    """(last failure, key_ok) as a host's answer gives them. While the gateway rejects the
    monitor's key, a host that refuses it is not at fault: its `key_ok` is unknown (None) rather
    than false, and its failure says that the monitor's key is rejected by the gateway (one is
    made from the host's state when none was kept, as after a restart)."""
    if not gateway_rejects_key:
        return failure, key_ok
    if key_ok is False:
        key_ok = None
    if failure is not None and failure.outcome is Outcome.KEY_REJECTED:
        return replace(failure, error=GATEWAY_REJECTS_KEY), key_ok
    if reason is Outcome.KEY_REJECTED:
        kind = failing_kind or ProbeKind.AUTH
        return Failure(kind, None, GATEWAY_REJECTS_KEY, failing_since, Outcome.KEY_REJECTED), key_ok
    return failure, key_ok
