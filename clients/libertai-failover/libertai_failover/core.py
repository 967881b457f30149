"""The decision core shared by the sync and async transports: one `Attempts` per request walks
the hosts in order, and the core remembers what it learnt (sticky host per model, hosts that just
failed). The transports only move bytes: they ask `Attempts` what to send next and tell it what
came back."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx2

from libertai_failover.answers import Answer
from libertai_failover.cache import AnswerCache
from libertai_failover.clock import Clock
from libertai_failover.outcomes import Outcome
from libertai_failover.rules import (
    error_reason,
    host_body,
    order_hosts,
    read_model,
    retry_reason,
    status_reason,
)
from libertai_failover.urls import AllowList, normalise_url

__all__ = ["HOST_HEADER", "Attempt", "Attempts", "FailoverCore"]

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

    def model_of(self, request: httpx2.Request, body: bytes) -> tuple[str, dict[str, Any]] | None:
        if request.method != "POST":
            return None
        return read_model(request.headers.get("content-type"), body)

    def attempts(
        self, request: httpx2.Request, body: bytes, named: tuple[str, dict[str, Any]] | None
    ) -> Attempts:
        answer = None if named is None else self.cache.current(named[0])
        hosts: tuple[str, ...] = ()
        if named is not None and answer is not None:
            now = self.clock.monotonic()
            with self._lock:
                penalised = {h for h, until in self._penalised.items() if until > now}
                sticky = self._sticky.get(named[0])
            hosts = order_hosts(answer, sticky, penalised, self.allowed.admits)
        return Attempts(self, request, body, named, answer, hosts)

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
        if not attempt.gateway:
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


class Attempts:
    """One request's way through its hosts, then the gateway. Use:

    while True:
        req = attempts.next_request()
        try: resp = send(req)
        except httpx2.TransportError as exc:
            if attempts.error(exc): continue
            raise
        if attempts.answered(resp): return resp
        close(resp)
    """

    def __init__(
        self,
        core: FailoverCore,
        request: httpx2.Request,
        body: bytes,
        named: tuple[str, dict[str, Any]] | None,
        answer: Answer | None,
        hosts: tuple[str, ...],
    ) -> None:
        self._core = core
        self._request = request
        self._body = body
        self._named = named
        self._answer = answer
        self._hosts = hosts
        self._index = 0
        self._host_body: bytes | None = None
        self._started = 0.0
        self.history: list[Attempt] = []

    @property
    def model(self) -> str | None:
        return None if self._named is None else self._named[0]

    @property
    def current(self) -> str:
        return self._hosts[self._index] if self._index < len(self._hosts) else self._gateway_origin()

    @property
    def on_gateway(self) -> bool:
        return self._index >= len(self._hosts)

    def _gateway_origin(self) -> str:
        if self._core.gateway_url is not None:
            return self._core.gateway_url
        url = self._request.url
        return f"{url.scheme}://{url.netloc.decode('ascii')}"

    def next_request(self) -> httpx2.Request:
        self._started = self._core.clock.monotonic()
        req = self._request
        if self.on_gateway:
            if self._core.gateway_url is None:
                return req  # unchanged: where the SDK sent it
            return self._copy(self._core.gateway_url, self._body, req.extensions)
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
        return self._copy(self._hosts[self._index], self._host_body, extensions)

    def _copy(self, base: str, body: bytes, extensions: dict[str, Any]) -> httpx2.Request:
        req = self._request
        url = self._core.url(base, req.url.raw_path)
        headers = [(k, v) for k, v in req.headers.raw if k.lower() not in _DROPPED_HEADERS]
        return httpx2.Request(req.method, url, headers=headers, content=body, extensions=extensions)

    def _record(self, reason: Outcome, status: int | None, passed_over: bool) -> Attempt:
        elapsed = self._core.clock.monotonic() - self._started
        attempt = Attempt(self.model, self.current, self.on_gateway, reason, status, elapsed, passed_over)
        self.history.append(attempt)
        self._core.report(attempt)
        return attempt

    def answered(self, response: httpx2.Response) -> bool:
        """True: `response` goes to the caller. False: close it, the next host is tried."""
        retry = None if self.on_gateway else retry_reason(response.status_code)
        if retry is not None:
            self._record(retry, response.status_code, passed_over=True)
            self._index += 1
            return False
        self._record(status_reason(response.status_code), response.status_code, passed_over=False)
        response.headers[HOST_HEADER] = self.current
        response.extensions = {**response.extensions, "libertai_attempts": tuple(self.history)}
        return True

    def error(self, exc: Exception) -> bool:
        """True: the next host is tried. False: re-raise `exc` (the gateway itself failed)."""
        passed_over = not self.on_gateway
        self._record(error_reason(exc), None, passed_over)
        self._index += 1
        return passed_over

    def failed(self, exc: Exception) -> None:
        """`error`, raising `exc` again where no other host is left to try (the gateway failed)."""
        if not self.error(exc):
            raise exc

    def stream_broke(self) -> None:
        """The body of the answer already given to the caller broke: reported, never retried."""
        self._record(Outcome.STREAM_ERROR, None, passed_over=False)
