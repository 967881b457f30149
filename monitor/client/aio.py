"""`AsyncFailoverTransport`: the async transport (`httpx2.AsyncClient(transport=...)`, e.g.
`openai.AsyncOpenAI`, `anthropic.AsyncAnthropic`). All decisions are the core's; this module only
sends and waits."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx2

from monitor.client.answers import MAX_ANSWER_BYTES
from monitor.client.cache import Fetch, Want
from monitor.client.core import Attempts
from monitor.client.options import Options

__all__ = ["AsyncFailoverTransport"]


class _ReportingStream(httpx2.AsyncByteStream):
    """The answer's body as given to the caller; a break is reported to the core, then raised."""

    def __init__(self, inner: httpx2.AsyncByteStream, attempts: Attempts) -> None:
        self._inner = inner
        self._attempts = attempts

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._inner:
                yield chunk
        except httpx2.TransportError:
            self._attempts.stream_broke()
            raise

    async def aclose(self) -> None:
        await self._inner.aclose()


class AsyncFailoverTransport(httpx2.AsyncBaseTransport):
    """Sends each request that names a model to the monitor's best host for it, failing over to
    the next, then to the gateway. See `monitor.client` for the arguments."""

    def __init__(
        self, monitor_url: str, *, transport: httpx2.AsyncBaseTransport | None = None, **options: Any
    ) -> None:
        self.options = Options(monitor_url, **options)
        self._core = self.options.core(asyncio.Event)
        self._inner = transport or httpx2.AsyncHTTPTransport(verify=self.options.ssl_context())
        self._monitor = httpx2.AsyncClient(
            timeout=self.options.monitor_timeout, verify=self.options.ssl_context(), trust_env=False
        )
        self._refreshes: set[asyncio.Task[None]] = set()

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        body = await request.aread()
        named = self._core.model_of(request, body)
        if named is not None:
            await self._answer_for(named[0])
        attempts = self._core.attempts(request, body, named)
        while True:
            try:
                response = await self._inner.handle_async_request(attempts.next_request())
            except httpx2.TransportError as exc:
                if attempts.error(exc):
                    continue
                raise
            if attempts.answered(response):
                response.stream = _ReportingStream(response.stream, attempts)  # type: ignore[arg-type]
                return response
            await response.aclose()

    async def _answer_for(self, model: str) -> None:
        want, fetch, ready = self._core.cache.want(model)
        if want is Want.FETCH_AND_WAIT:
            assert fetch is not None
            await self._fetch(fetch)
        elif want is Want.WAIT:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(ready.wait(), self.options.monitor_timeout)
        elif want is Want.BACKGROUND:
            assert fetch is not None
            task = asyncio.get_running_loop().create_task(self._fetch(fetch))
            self._refreshes.add(task)
            task.add_done_callback(self._refreshes.discard)

    async def _fetch(self, fetch: Fetch) -> None:
        cache = self._core.cache
        try:
            async with self._monitor.stream("GET", fetch.url, headers=fetch.headers) as resp:
                body = b""
                async for chunk in resp.aiter_bytes():
                    body += chunk
                    if len(body) > MAX_ANSWER_BYTES:
                        break
                cache.got(fetch, resp.status_code, resp.headers.get("etag"), body)
        except BaseException as exc:  # unreachable or broken (or cancelled): keep the last answer
            cache.failed(fetch)
            if not isinstance(exc, Exception):
                raise

    async def refreshes_done(self) -> None:
        """Wait for the background refreshes started so far (for tests and orderly shutdowns)."""
        if self._refreshes:
            await asyncio.gather(*self._refreshes, return_exceptions=True)

    async def aclose(self) -> None:
        for task in self._refreshes:
            task.cancel()
        await self.refreshes_done()
        await self._monitor.aclose()
        await self._inner.aclose()
