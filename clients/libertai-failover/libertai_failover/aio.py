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
from libertai_failover.core import Attempts, Try
from libertai_failover.options import check_transport
from libertai_failover.transport import ReportingBase, TransportBase, due, next_wake

__all__ = ["AsyncFailoverTransport"]


_Sent = tuple[httpx2.Response, bytes | None, AsyncIterator[bytes] | None]


class _ReportingStream(ReportingBase[httpx2.AsyncByteStream], httpx2.AsyncByteStream):
    """The body of an async answer (see `ReportingBase`)."""

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            if self._rest is None:
                async for chunk in self._inner:
                    yield chunk
            else:
                if self._first:
                    yield self._first
                async for chunk in self._rest:
                    yield chunk
        except httpx2.TransportError:
            self._attempts.stream_broke(self._try)
            raise

    async def aclose(self) -> None:
        self._attempts.release(self._try)
        await self._inner.aclose()


class AsyncFailoverTransport(
    TransportBase[httpx2.AsyncBaseTransport, httpx2.AsyncClient], httpx2.AsyncBaseTransport
):
    """The async failover transport (see `TransportBase`)."""

    _reporting = _ReportingStream

    def __init__(
        self, monitor_url: str, *, transport: httpx2.AsyncBaseTransport | None = None, **options: Any
    ) -> None:
        check_transport(transport, httpx2.AsyncBaseTransport)
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
        clock = self._core.clock
        running: dict[asyncio.Task[_Sent], Try] = {}
        hedge_at: float | None = None
        try:
            while True:
                if not running:
                    t = attempts.start()
                    running[asyncio.ensure_future(self._send(t, attempts))] = t
                    if hedge_at is None and (after := attempts.hedge_after) is not None:
                        hedge_at = t.started + after
                wake = next_wake(running.values(), hedge_at)
                waiting: set[asyncio.Future[Any]] = set(running)
                if wake is not None:
                    waiting.add(asyncio.ensure_future(clock.sleep(wake - clock.monotonic())))
                done, pending = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
                for other in pending - set(running):
                    other.cancel()
                for task in [d for d in done if d in running]:
                    t = running.pop(task)
                    try:
                        response, first, rest = task.result()
                    except httpx2.TransportError as exc:
                        attempts.failed(t, exc)
                        continue
                    if attempts.answered(t, response):
                        for loser, lt in running.items():
                            await _stop(loser)
                            attempts.lost(lt)
                        running.clear()
                        return self._wrap(t, response, attempts, first, rest)
                    await response.aclose()
                now = clock.monotonic()
                for task, t in list(running.items()):
                    if due(t, now):
                        del running[task]
                        await _stop(task)
                        attempts.too_slow(t)
                if hedge_at is not None and now >= hedge_at:
                    hedge_at = float("inf")  # one hedge per request
                    if running and attempts.has_next_host and self._core.hedges.take():
                        t = attempts.start(hedged=True)
                        running[asyncio.ensure_future(self._send(t, attempts))] = t
        finally:
            for task, t in running.items():  # the caller gave up, or the gateway failed
                await _stop(task)
                attempts.release(t)

    async def _send(self, t: Try, attempts: Attempts) -> _Sent:
        """One try: the response, and its first body chunk when the transport must see it before
        answering (a first-token deadline or a hedge)."""
        response = await self._inner.handle_async_request(t.request)
        if not attempts.wants_first_byte(t, response):
            return response, None, None
        rest = response.stream.__aiter__()  # type: ignore[union-attr]
        try:
            first = await rest.__anext__()
        except StopAsyncIteration:
            first = b""
        except BaseException:
            await response.aclose()
            raise
        return response, first, rest

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


async def _stop(task: asyncio.Task[_Sent]) -> None:
    """Cancel a try and close whatever response it got."""
    task.cancel()
    with contextlib.suppress(BaseException):
        response, _, _ = await task
        await response.aclose()
