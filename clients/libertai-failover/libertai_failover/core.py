"""The decision core shared by the sync and async transports: one `Attempts` per request walks
the hosts in order, and the core remembers what it learnt (sticky host per model, hosts that just
failed). The transports only move bytes: they ask `Attempts` what to send next and tell it what
came back."""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx2

from libertai_failover.answers import Answer
from libertai_failover.cache import AnswerCache
from libertai_failover.clock import Clock
from libertai_failover.memory import Affinity, HedgeBudget, InFlight
from libertai_failover.outcomes import Outcome
from libertai_failover.rules import (
    error_reason,
    host_body,
    order_hosts,
    read_model,
    retry_reason,
    status_reason,
)
from libertai_failover.spread import SESSION_HEADER, choose_hosts, conversation_key, first_token_deadline
from libertai_failover.urls import AllowList, normalise_url

__all__ = ["HOST_HEADER", "Attempt", "Attempts", "FailoverCore", "Spread", "Try"]

log = logging.getLogger("monitor.client")

HOST_HEADER = "X-LibertAI-Host"  # added to every response: which host answered
_DROPPED_HEADERS = frozenset({b"host", b"content-length", b"transfer-encoding"})


@dataclass(frozen=True, slots=True)
class Attempt:
    """One try of one request, as the `on_attempt` callback and the log see it (never a header)."""

    model: str | None
    host: str
    gateway: bool
    reason: Outcome  # `ok`, why it was passed over, or `stream_error` for a body cut after headers
    status: int | None
    elapsed_s: float
    passed_over: bool  # True: the next host was tried
    cancelled: bool = False  # a hedged try that lost the race (not the host's fault)
    # The monitor named this host but `allowed_hosts` refuses it: nothing was sent to it (reason
    # `not_probed`, as the service reports a host outside its allow-list).
    refused: bool = False


@dataclass(frozen=True, slots=True)
class Spread:
    """How requests are spread (see `libertai_failover`): off keeps the single best host."""

    on: bool = True
    first_token_timeout: float | None = None
    hedge_after: float | None = None
    hedge_budget: float = 0.1
    affinity_size: int = 10_000
    affinity_ttl: float = 1800.0


@dataclass(slots=True, eq=False)
class Try:
    """One try in flight: where it went, when, and how long it may wait for its first byte."""

    host: str
    gateway: bool
    request: httpx2.Request
    started: float
    deadline: float | None  # seconds to the first body byte; None: no limit
    hedged: bool = False
    counted: bool = False  # counted in the host's requests in flight


class FailoverCore:
    def __init__(
        self,
        *,
        monitor_url: str,
        gateway_url: str | None,
        allowed_hosts: AllowList,
        refresh: float,
        penalty: float,
        connect_timeout: float,
        on_attempt: Callable[[Attempt], None] | None,
        clock: Clock,
        new_ready: Callable[[], Any],
        spread: Spread | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.cache = AnswerCache(monitor_url.rstrip("/"), refresh, clock, new_ready)
        self.gateway_url = None if gateway_url is None else normalise_url(gateway_url)
        self.allowed = allowed_hosts
        self.penalty = penalty
        self.connect_timeout = connect_timeout
        self.on_attempt = on_attempt
        self.clock = clock
        self._sticky: dict[str, str] = {}
        self._penalised: dict[str, float] = {}
        self._lock = threading.Lock()
        self._urls: dict[tuple[str, bytes], httpx2.URL] = {}
        self.spread = spread or Spread()
        self.rng = rng or random.Random()
        self.affinity = Affinity(clock, self.spread.affinity_size, self.spread.affinity_ttl)
        self.in_flight = InFlight()
        self.hedges = HedgeBudget(clock, self.spread.hedge_budget)
        self._warned: set[str] = set()  # hosts refused by the allow-list, logged once each

    def model_of(self, request: httpx2.Request, body: bytes) -> tuple[str, dict[str, Any]] | None:
        if request.method != "POST":
            return None
        return read_model(request.headers.get("content-type"), body)

    def attempts(
        self, request: httpx2.Request, body: bytes, named: tuple[str, dict[str, Any]] | None
    ) -> Attempts:
        answer = None if named is None else self.cache.current(named[0])
        hosts: tuple[str, ...] = ()
        refused: tuple[str, ...] = ()
        key: str | None = None
        if named is not None and answer is not None:
            named_hosts = dict.fromkeys((*answer.order, *(c.url for c in answer.candidates)))
            refused = tuple(h for h in named_hosts if not self.allowed.admits(h))
            now = self.clock.monotonic()
            with self._lock:
                penalised = {h for h, until in self._penalised.items() if until > now}
                sticky = self._sticky.get(named[0])
            admits = self._admits(answer, request.url.path)
            if self.spread.on and answer.candidates:
                keyed = conversation_key(request.headers.get(SESSION_HEADER), named[1])
                key, opening = keyed if keyed is not None else (None, True)
                bound = None if key is None else self.affinity.get(key)
                snapshot = self.in_flight.snapshot()
                hosts = choose_hosts(answer, bound, opening, snapshot, penalised, admits, self.rng)
            else:
                hosts = order_hosts(answer, sticky, penalised, admits)
        self.hedges.request()
        attempts = Attempts(self, request, body, named, answer, hosts, key)
        for host in refused:
            attempts.refused(host)
        return attempts

    def _admits(self, answer: Answer, path: str) -> Callable[[str], bool]:
        """Which hosts a request to `path` may go to: those the allow-list admits and that are not
        known to refuse the path (the monitor's `paths_refused`); the gateway remains the last try."""
        allowed = self.allowed.admits
        if not answer.refused_paths:
            return allowed
        return lambda host: allowed(host) and not answer.refuses(host, path)

    def deadline(self, answer: Answer | None, host: str, streamed: bool) -> float | None:
        """Seconds a try of a streamed request may wait for its first byte; None: no limit (a
        request answered whole sends its first byte at the end; `spread=False` sets none unless
        `first_token_timeout` is given)."""
        if not streamed or (not self.spread.on and self.spread.first_token_timeout is None):
            return None
        candidate = None if answer is None else answer.candidate(host)
        return first_token_deadline(self.spread.first_token_timeout, candidate)

    def url(self, base: str, raw_path: bytes) -> httpx2.URL:
        """The URL of `raw_path` on `base`, parsed once: parsing a URL is most of what building a
        request costs, and a client sends to few hosts and fewer paths."""
        key = (base, raw_path)
        url = self._urls.get(key)
        if url is None:
            if len(self._urls) >= 4096:
                self._urls.clear()
            url = self._urls[key] = httpx2.URL(base + raw_path.decode("ascii"))
        return url

    # -- what the core learns ------------------------------------------------------------------

    def report(self, attempt: Attempt) -> None:
        if attempt.refused:
            self._refused(attempt)
            return
        if not attempt.gateway and not attempt.cancelled:
            with self._lock:
                if attempt.reason is Outcome.OK and attempt.model is not None:
                    self._sticky[attempt.model] = attempt.host
                    self._penalised.pop(attempt.host, None)
                elif attempt.passed_over or attempt.reason is Outcome.STREAM_ERROR:
                    self._penalised[attempt.host] = self.clock.monotonic() + self.penalty
                    if attempt.model is not None and self._sticky.get(attempt.model) == attempt.host:
                        del self._sticky[attempt.model]
        if attempt.passed_over or attempt.reason is Outcome.STREAM_ERROR:
            log.info(
                "libertai host %s: %s after %.1f ms%s",
                attempt.host,
                attempt.reason.value,
                attempt.elapsed_s * 1000,
                ", trying the next" if attempt.passed_over else "",
                extra={"host": attempt.host, "reason": attempt.reason.value, "elapsed_s": attempt.elapsed_s},
            )
        if self.on_attempt is not None:
            self.on_attempt(attempt)

    def _refused(self, attempt: Attempt) -> None:
        with self._lock:
            first = attempt.host not in self._warned
            if first:
                if len(self._warned) >= 4096:
                    self._warned.clear()
                self._warned.add(attempt.host)
        if first:
            log.warning(
                "libertai host %s is outside allowed_hosts (%s): requests skip it",
                attempt.host,
                self.allowed,
                extra={"host": attempt.host, "reason": "outside allowed_hosts"},
            )
        if self.on_attempt is not None:
            self.on_attempt(attempt)


class Attempts:
    """One request's way through its hosts, then the gateway. Each try is `start`ed, then told
    what came back (`answered`, `error`), or given up (`too_slow`, `lost`); one try at a time, or
    two while a hedge runs. The transports' loops:

    t = attempts.start()
    try: resp = send(t.request)
    except httpx2.TransportError as exc:
        attempts.failed(t, exc)  # raises where the gateway itself failed
        -> start the next
    if attempts.answered(t, resp): return resp
    close(resp) -> start the next
    """

    def __init__(
        self,
        core: FailoverCore,
        request: httpx2.Request,
        body: bytes,
        named: tuple[str, dict[str, Any]] | None,
        answer: Answer | None,
        hosts: tuple[str, ...],
        key: str | None = None,
    ) -> None:
        self._core = core
        self._request = request
        self._body = body
        self._named = named
        self._answer = answer
        self._hosts = hosts
        self._key = key
        self._index = 0
        self._host_body: bytes | None = None
        self._streamed = named is not None and named[1].get("stream") is True
        self.history: list[Attempt] = []

    @property
    def model(self) -> str | None:
        return None if self._named is None else self._named[0]

    @property
    def has_next_host(self) -> bool:
        """A host (not the gateway) is left to try."""
        return self._index < len(self._hosts)

    @property
    def hedge_after(self) -> float | None:
        """Seconds after which a try without a first byte gets a hedged twin; None: never."""
        spread = self._core.spread
        return spread.hedge_after if spread.on and self._streamed and self._hosts else None

    def _gateway_origin(self) -> str:
        if self._core.gateway_url is not None:
            return self._core.gateway_url
        url = self._request.url
        return f"{url.scheme}://{url.netloc.decode('ascii')}"

    def start(self, hedged: bool = False) -> Try:
        """The next try: the next host, or the gateway once none is left."""
        now = self._core.clock.monotonic()
        if not self.has_next_host:
            self._index += 1
            return Try(self._gateway_origin(), True, self._gateway_request(), now, None, hedged)
        host = self._hosts[self._index]
        self._index += 1
        deadline = self._core.deadline(self._answer, host, self._streamed)
        t = Try(host, False, self._host_request(host), now, deadline, hedged, counted=True)
        self._core.in_flight.add(host, 1)
        return t

    def release(self, t: Try) -> None:
        """The try is over (its body closed, or it failed): no longer in flight."""
        if t.counted:
            t.counted = False
            self._core.in_flight.add(t.host, -1)

    def _gateway_request(self) -> httpx2.Request:
        req = self._request
        if self._core.gateway_url is None:
            return req  # unchanged: where the SDK sent it
        return self._copy(self._core.gateway_url, self._body, req.extensions)

    def _host_request(self, host: str) -> httpx2.Request:
        req = self._request
        if self._host_body is None:
            assert self._named is not None and self._answer is not None
            a = self._answer
            if a.upstream_model == self._named[0] and a.request_fields_json == "{}":
                self._host_body = self._body  # nothing to change: no new encoding
            else:
                self._host_body = host_body(self._named[1], a.upstream_model, a.request_fields)
        extensions = dict(req.extensions)
        timeout = extensions.get("timeout")
        if isinstance(timeout, dict):  # a dead host must not hold the request for the SDK's whole timeout
            connect = timeout.get("connect")
            cap = self._core.connect_timeout
            extensions["timeout"] = {**timeout, "connect": cap if connect is None else min(connect, cap)}
        return self._copy(host, self._host_body, extensions)

    def _copy(self, base: str, body: bytes, extensions: dict[str, Any]) -> httpx2.Request:
        req = self._request
        url = self._core.url(base, req.url.raw_path)
        headers = [(k, v) for k, v in req.headers.raw if k.lower() not in _DROPPED_HEADERS]
        return httpx2.Request(req.method, url, headers=headers, content=body, extensions=extensions)

    def refused(self, host: str) -> None:
        """The monitor named `host` but the allow-list refuses it: an attempt that sent nothing."""
        attempt = Attempt(self.model, host, False, Outcome.NOT_PROBED, None, 0.0, True, refused=True)
        self.history.append(attempt)
        self._core.report(attempt)

    def _record(
        self, t: Try, reason: Outcome, status: int | None, passed_over: bool, cancelled: bool = False
    ) -> Attempt:
        elapsed = self._core.clock.monotonic() - t.started
        attempt = Attempt(self.model, t.host, t.gateway, reason, status, elapsed, passed_over, cancelled)
        self.history.append(attempt)
        self._core.report(attempt)
        return attempt

    def answered(self, t: Try, response: httpx2.Response) -> bool:
        """True: `response` goes to the caller. False: close it, the next host is tried."""
        retry = None if t.gateway else retry_reason(response.status_code)
        if retry is not None:
            self.release(t)
            self._record(t, retry, response.status_code, passed_over=True)
            return False
        reason = status_reason(response.status_code)
        self._record(t, reason, response.status_code, passed_over=False)
        if reason is Outcome.OK and self._key is not None and not t.gateway:
            self._core.affinity.bind(self._key, t.host)
        response.headers[HOST_HEADER] = t.host
        response.extensions = {**response.extensions, "libertai_attempts": tuple(self.history)}
        return True

    def wants_first_byte(self, t: Try, response: httpx2.Response) -> bool:
        """Whether the transport reads the first body byte before answering: a streamed answer
        from a host under a first-token deadline or a hedge."""
        timed = t.deadline is not None or self.hedge_after is not None
        return timed and not t.gateway and response.status_code < 300

    def error(self, t: Try, exc: Exception) -> bool:
        """True: the next host is tried. False: re-raise `exc` (the gateway itself failed)."""
        self.release(t)
        self._record(t, error_reason(exc), None, not t.gateway)
        return not t.gateway

    def failed(self, t: Try, exc: Exception) -> None:
        """`error`, raising `exc` again where no other host is left to try (the gateway failed)."""
        if not self.error(t, exc):
            raise exc

    def too_slow(self, t: Try) -> None:
        """No first byte within the deadline: given up, the next host is tried."""
        self.release(t)
        self._record(t, Outcome.TIMEOUT, None, passed_over=True)

    def lost(self, t: Try) -> None:
        """The other try of a hedged pair answered first: this one is cancelled."""
        self.release(t)
        self._record(t, Outcome.TIMEOUT, None, passed_over=True, cancelled=True)

    def stream_broke(self, t: Try) -> None:
        """The body of the answer already given to the caller broke: reported, never retried."""
        self._record(t, Outcome.STREAM_ERROR, None, passed_over=False)
