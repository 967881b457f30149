"""`FailoverTransport`: the sync transport (`httpx2.Client(transport=...)`, e.g. `openai.OpenAI`,
`anthropic.Anthropic`). All decisions are the core's; this module only sends and waits."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx2

from libertai_failover.cache import Fetch, Want
from libertai_failover.transport import ReportingBase, TransportBase

__all__ = ["FailoverTransport"]


class _ReportingStream(ReportingBase[httpx2.SyncByteStream], httpx2.SyncByteStream):
    """The body of a sync answer, reporting a break (see `ReportingBase`)."""

    def __iter__(self) -> Iterator[bytes]:
        try:
            yield from self._inner
        except httpx2.TransportError:
            self._attempts.stream_broke()
            raise

    def close(self) -> None:
        self._inner.close()


class FailoverTransport(TransportBase[httpx2.BaseTransport, httpx2.Client], httpx2.BaseTransport):
    """The sync failover transport (see `TransportBase`)."""

    _reporting = _ReportingStream

    def __init__(
        self, monitor_url: str, *, transport: httpx2.BaseTransport | None = None, **options: Any
    ) -> None:
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
        while True:
            try:
                response = self._inner.handle_request(attempts.next_request())
            except httpx2.TransportError as exc:
                attempts.failed(exc)
                continue
            if (answer := self._answer(response, attempts)) is not None:
                return answer
            response.close()

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
