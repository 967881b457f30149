"""`FailoverTransport`: the sync transport (`httpx2.Client(transport=...)`, e.g. `openai.OpenAI`,
`anthropic.Anthropic`). All decisions are the core's; this module only sends and waits."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any

import httpx2

from libertai_failover.cache import Fetch, Want
from libertai_failover.core import Attempts, Try
from libertai_failover.options import check_transport
from libertai_failover.transport import ReportingBase, TransportBase, due, next_wake

__all__ = ["FailoverTransport"]


_Sent = tuple[httpx2.Response, bytes | None, Iterator[bytes] | None]


class _ReportingStream(ReportingBase[httpx2.SyncByteStream], httpx2.SyncByteStream):
    """The body of a sync answer (see `ReportingBase`)."""

    def __iter__(self) -> Iterator[bytes]:
        try:
            if self._rest is None:
                yield from self._inner
            else:
                if self._first:
                    yield self._first
                yield from self._rest
        except httpx2.TransportError:
            self._attempts.stream_broke(self._try)
            raise

    def close(self) -> None:
        self._attempts.release(self._try)
        self._inner.close()


class _Run:
    """One try, inline or on its own thread (when its wait for a first byte is bounded: a thread
    blocked in a read cannot be interrupted, only abandoned, its response closed under it)."""

    def __init__(self, t: Try) -> None:
        self.t = t
        self.future: Future[_Sent] = Future()
        self._response: httpx2.Response | None = None
        self._abandoned = False
        self._lock = threading.Lock()

    def got(self, response: httpx2.Response) -> None:
        with self._lock:
            self._response = response
            abandoned = self._abandoned
        if abandoned:
            response.close()

    def abandon(self) -> None:
        with self._lock:
            self._abandoned = True
            response = self._response
        if response is not None:
            response.close()


class FailoverTransport(TransportBase[httpx2.BaseTransport, httpx2.Client], httpx2.BaseTransport):
    """The sync failover transport (see `TransportBase`)."""

    _reporting = _ReportingStream

    def __init__(
        self, monitor_url: str, *, transport: httpx2.BaseTransport | None = None, **options: Any
    ) -> None:
        check_transport(transport, httpx2.BaseTransport)
        super().__init__(
            monitor_url, transport, options, threading.Event, httpx2.HTTPTransport, httpx2.Client
        )
        self._refresher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="libertai-monitor-refresh")

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        body = request.read()
        named = self._core.model_of(request, body)
        if named is not None:
            self._answer_for(named[0])
        attempts = self._core.attempts(request, body, named)
        clock = self._core.clock
        running: list[_Run] = []
        hedge_at: float | None = None
        try:
            while True:
                if not running:
                    running.append(self._start(attempts.start(), attempts))
                    if hedge_at is None and (after := attempts.hedge_after) is not None:
                        hedge_at = running[0].t.started + after
                wake = next_wake((r.t for r in running), hedge_at)
                timeout = None if wake is None else max(0.0, wake - clock.monotonic())
                wait([r.future for r in running], timeout, FIRST_COMPLETED)
                for run in [r for r in running if r.future.done()]:
                    running.remove(run)
                    try:
                        response, first, rest = run.future.result()
                    except httpx2.TransportError as exc:
                        attempts.failed(run.t, exc)
                        continue
                    if attempts.answered(run.t, response):
                        for loser in running:
                            loser.abandon()
                            attempts.lost(loser.t)
                        running.clear()
                        return self._wrap(run.t, response, attempts, first, rest)
                    response.close()
                now = clock.monotonic()
                for run in [r for r in running if due(r.t, now)]:
                    running.remove(run)
                    run.abandon()
                    attempts.too_slow(run.t)
                if hedge_at is not None and now >= hedge_at:
                    hedge_at = float("inf")  # one hedge per request
                    if running and attempts.has_next_host and self._core.hedges.take():
                        running.append(self._start(attempts.start(hedged=True), attempts))
        finally:
            for run in running:  # the gateway failed
                run.abandon()
                attempts.release(run.t)

    def _start(self, t: Try, attempts: Attempts) -> _Run:
        run = _Run(t)
        if t.deadline is None and attempts.hedge_after is None:
            self._send(run, attempts)
        else:
            threading.Thread(target=self._send, args=(run, attempts), daemon=True).start()
        return run

    def _send(self, run: _Run, attempts: Attempts) -> None:
        """One try: the response, and its first body chunk when the transport must see it before
        answering (a first-token deadline or a hedge)."""
        try:
            response = self._inner.handle_request(run.t.request)
            run.got(response)
            if not attempts.wants_first_byte(run.t, response):
                run.future.set_result((response, None, None))
                return
            rest = iter(response.stream)  # type: ignore[arg-type]
            try:
                first = next(rest, b"")
            except BaseException:
                response.close()
                raise
            run.future.set_result((response, first, rest))
        except Exception as exc:
            run.future.set_exception(exc)

    def _answer_for(self, model: str) -> None:
        want, fetch, ready = self._core.cache.want(model)
        if want is Want.FETCH_AND_WAIT:
            assert fetch is not None
            self._fetch(fetch)
        elif want is Want.WAIT:
            ready.wait(self.options.monitor_timeout)
        elif want is Want.BACKGROUND:
            assert fetch is not None
            try:
                self._refresher.submit(self._fetch, fetch)
            except RuntimeError:  # closed: route on the answer we have
                self._core.cache.failed(fetch)

    def _fetch(self, fetch: Fetch) -> None:
        cache = self._core.cache
        with (
            cache.fetching(fetch) as download,
            self._monitor.stream("GET", fetch.url, headers=fetch.headers) as resp,
        ):
            for chunk in resp.iter_bytes():
                if download.add(chunk):
                    break
            cache.got(fetch, resp.status_code, resp.headers.get("etag"), download.body)

    def refreshes_done(self) -> None:
        """Wait for the background refreshes started so far (for tests and orderly shutdowns)."""
        self._refresher.submit(lambda: None).result()

    def close(self) -> None:
        self._refresher.shutdown(wait=False, cancel_futures=True)
        self._monitor.close()
        self._inner.close()
