"""`FailoverTransport`: the sync transport (`httpx2.Client(transport=...)`, e.g. `openai.OpenAI`,
`anthropic.Anthropic`). All decisions are the core's; this module only sends and waits."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx2

from monitor.client.answers import MAX_ANSWER_BYTES
from monitor.client.cache import Fetch, Want
from monitor.client.core import Attempts
from monitor.client.options import Options

__all__ = ["FailoverTransport"]


class _ReportingStream(httpx2.SyncByteStream):
    """The answer's body as given to the caller; a break is reported to the core, then raised."""

    def __init__(self, inner: httpx2.SyncByteStream, attempts: Attempts) -> None:
        self._inner = inner
        self._attempts = attempts

    def __iter__(self) -> Iterator[bytes]:
        try:
            yield from self._inner
        except httpx2.TransportError:
            self._attempts.stream_broke()
            raise

    def close(self) -> None:
        self._inner.close()


class FailoverTransport(httpx2.BaseTransport):
    """Sends each request that names a model to the monitor's best host for it, failing over to
    the next, then to the gateway. See `monitor.client` for the arguments."""

    def __init__(
        self, monitor_url: str, *, transport: httpx2.BaseTransport | None = None, **options: Any
    ) -> None:
        self.options = Options(monitor_url, **options)
        self._core = self.options.core(threading.Event)
        self._inner = transport or httpx2.HTTPTransport(verify=self.options.ssl_context())
        self._monitor = httpx2.Client(
            timeout=self.options.monitor_timeout, verify=self.options.ssl_context(), trust_env=False
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
                if attempts.error(exc):
                    continue
                raise
            if attempts.answered(response):
                response.stream = _ReportingStream(response.stream, attempts)  # type: ignore[arg-type]
                return response
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
        try:
            with self._monitor.stream("GET", fetch.url, headers=fetch.headers) as resp:
                body = b""
                for chunk in resp.iter_bytes():
                    body += chunk
                    if len(body) > MAX_ANSWER_BYTES:
                        break
                cache.got(fetch, resp.status_code, resp.headers.get("etag"), body)
        except BaseException as exc:  # unreachable or broken: keep the last answer
            cache.failed(fetch)
            if not isinstance(exc, Exception):
                raise

    def refreshes_done(self) -> None:
        """Wait for the background refreshes started so far (for tests and orderly shutdowns)."""
        self._refresher.submit(lambda: None).result()

    def close(self) -> None:
        self._refresher.shutdown(wait=False, cancel_futures=True)
        self._monitor.close()
        self._inner.close()
