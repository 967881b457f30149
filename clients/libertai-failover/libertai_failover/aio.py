"""`AsyncFailoverTransport`: the async transport (`httpx2.AsyncClient(transport=...)`, e.g.
`openai.AsyncOpenAI`, `anthropic.AsyncAnthropic`). All decisions are the core's; this module only
sends and waits."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx2

from libertai_failover.cache import Fetch, Want
from libertai_failover.transport import ReportingBase, TransportBase

__all__ = ["AsyncFailoverTransport"]


class _ReportingStream(ReportingBase[httpx2.AsyncByteStream], httpx2.AsyncByteStream):
    """The body of an async answer, reporting a break (see `ReportingBase`)."""

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._inner:
                yield chunk
        except httpx2.TransportError:
            self._attempts.stream_broke()
            raise

    async def aclose(self) -> None:
        await self._inner.aclose()


class AsyncFailoverTransport(
    TransportBase[httpx2.AsyncBaseTransport, httpx2.AsyncClient], httpx2.AsyncBaseTransport
):
    """The async failover transport (see `TransportBase`)."""

    _reporting = _ReportingStream

    def __init__(
        self, monitor_url: str, *, transport: httpx2.AsyncBaseTransport | None = None, **options: Any
    ) -> None:
        super().__init__(
            monitor_url, transport, options, asyncio.Event, httpx2.AsyncHTTPTransport, httpx2.AsyncClient
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
                attempts.failed(exc)
                continue
            if (answer := self._answer(response, attempts)) is not None:
                return answer
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
        with cache.fetching(fetch) as download:
            async with self._monitor.stream("GET", fetch.url, headers=fetch.headers) as resp:
                async for chunk in resp.aiter_bytes():
                    if download.add(chunk):
                        break
                cache.got(fetch, resp.status_code, resp.headers.get("etag"), download.body)

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
