"""The spreading transports on real loopback hosts: a silent host is left after the first-token
deadline, a host that sent a byte never is, hedges race and the loser is cancelled, a conversation
stays on its host, and `spread=False` follows the single best host."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx2
import pytest
from aiohttp import web

from libertai_failover import AsyncFailoverTransport, FailoverTransport
from libertai_failover.clock import FakeClock
from tests.client.support import StubMonitor, answer

STREAM = {"model": "m", "stream": True, "messages": [{"role": "user", "content": "Hi"}]}


@dataclass
class Host:
    """A chat host: `stream` answers at once, `silent` sends headers then nothing, `stall` sends
    one chunk then waits for `release`."""

    mode: str = "stream"
    url: str = ""
    received: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    requests: int = 0
    cancelled: int = 0
    _runner: web.AppRunner | None = None

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        await request.read()
        self.requests += 1
        self.received.set()
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        try:
            if self.mode == "silent":
                await asyncio.Event().wait()
            await resp.write(f"data: {json.dumps({'from': self.url})}\n\n".encode())
            if self.mode == "stall":
                await self.release.wait()
            await resp.write(b"data: [DONE]\n\n")
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        return resp

    async def start(self) -> Host:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1, handler_cancellation=True)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


@pytest.fixture
async def hosts() -> AsyncIterator[tuple[Host, Host]]:
    a, b = await Host().start(), await Host().start()
    yield a, b
    await a.stop()
    await b.stop()


async def _monitor(first: Host, second: Host, weights: tuple[float, float] = (1.0, 0.0)) -> StubMonitor:
    data = answer("m", first.url, [second.url])
    data["candidates"] = [
        {"url": h.url, "weight": w, "ttft_ms_p50": 50, "ttft_ms_p95": 100, "load": 0, "warm": True}
        for h, w in ((first, weights[0]), (second, weights[1]))
    ]
    return await StubMonitor({"m": data}).start()


def _aio(monitor: StubMonitor, **options: Any) -> AsyncFailoverTransport:
    return AsyncFailoverTransport(monitor.url, allowed_hosts="http://127.0.0.1:*", **options)


async def _post(t: httpx2.AsyncBaseTransport, body: dict[str, Any], **headers: str) -> tuple[str, bytes]:
    async with httpx2.AsyncClient(transport=t) as client:
        resp = await client.post("http://gateway.invalid/v1/chat/completions", json=body, headers=headers)
        return resp.headers["X-LibertAI-Host"], resp.content


async def test_a_host_that_sends_headers_then_nothing_is_left_for_the_next(hosts: tuple[Host, Host]) -> None:
    silent, good = hosts
    silent.mode = "silent"
    clock = FakeClock()
    monitor = await _monitor(silent, good)
    t = _aio(monitor, clock=clock, first_token_timeout=1.0)
    task = asyncio.ensure_future(_post(t, STREAM))
    await asyncio.wait_for(silent.received.wait(), 10)
    await clock.advance(1.0)
    host, body = await asyncio.wait_for(task, 10)
    assert host == good.url and good.url.encode() in body
    await t.aclose()
    await monitor.stop()


async def test_a_host_that_sent_a_byte_is_never_abandoned(hosts: tuple[Host, Host]) -> None:
    slow, good = hosts
    slow.mode = "stall"
    clock = FakeClock()
    monitor = await _monitor(slow, good)
    t = _aio(monitor, clock=clock, first_token_timeout=1.0)
    async with httpx2.AsyncClient(transport=t) as client:
        req = client.build_request("POST", "http://gateway.invalid/v1/chat/completions", json=STREAM)
        resp = await client.send(req, stream=True)
        await clock.advance(10.0)
        slow.release.set()
        body = await resp.aread()
    assert resp.headers["X-LibertAI-Host"] == slow.url and body.endswith(b"[DONE]\n\n")
    assert good.requests == 0
    await t.aclose()
    await monitor.stop()


async def test_a_hedge_answers_when_the_first_try_is_silent_and_the_loser_is_cancelled(
    hosts: tuple[Host, Host],
) -> None:
    silent, good = hosts
    silent.mode = "silent"
    clock = FakeClock()
    monitor = await _monitor(silent, good)
    t = _aio(monitor, clock=clock, first_token_timeout=100.0, hedge_after=0.5, hedge_budget=1.0)
    task = asyncio.ensure_future(_post(t, STREAM))
    await asyncio.wait_for(silent.received.wait(), 10)
    await clock.advance(0.5)
    host, _ = await asyncio.wait_for(task, 10)
    assert host == good.url
    for _ in range(100):  # the cancelled connection reaches the host's handler
        if silent.cancelled:
            break
        await asyncio.sleep(0.02)
    assert silent.cancelled == 1
    await t.aclose()
    await monitor.stop()


async def test_no_hedge_beyond_the_budget(hosts: tuple[Host, Host]) -> None:
    silent, good = hosts
    silent.mode = "silent"
    clock = FakeClock()
    monitor = await _monitor(silent, good)
    t = _aio(monitor, clock=clock, first_token_timeout=5.0, hedge_after=0.5, hedge_budget=0.0)
    task = asyncio.ensure_future(_post(t, STREAM))
    await asyncio.wait_for(silent.received.wait(), 10)
    await clock.advance(0.5)
    assert good.requests == 0  # no budget: the silent host keeps its time
    await clock.advance(4.5)
    host, _ = await asyncio.wait_for(task, 10)
    assert host == good.url
    await t.aclose()
    await monitor.stop()


async def test_a_conversation_stays_on_its_host_across_turns(hosts: tuple[Host, Host]) -> None:
    a, b = hosts
    monitor = await _monitor(a, b, (0.5, 0.5))
    t = _aio(monitor)
    turns: list[dict[str, str]] = [{"role": "user", "content": "Tell me about owls"}]
    seen = set()
    for n in range(6):
        host, _ = await _post(t, {"model": "m", "stream": True, "messages": turns})
        seen.add(host)
        turns = [*turns, {"role": "assistant", "content": "ok"}, {"role": "user", "content": f"more {n}"}]
    assert len(seen) == 1
    await t.aclose()
    await monitor.stop()


async def test_without_spread_every_request_goes_to_the_best_host(hosts: tuple[Host, Host]) -> None:
    a, b = hosts
    monitor = await _monitor(a, b, (0.01, 0.99))
    t = _aio(monitor, spread=False)
    for n in range(5):
        body = {"model": "m", "stream": True, "messages": [{"role": "user", "content": f"q{n}"}]}
        assert (await _post(t, body))[0] == a.url
    await t.aclose()
    await monitor.stop()


async def test_the_sync_transport_leaves_a_silent_host_too(hosts: tuple[Host, Host]) -> None:
    silent, good = hosts
    silent.mode = "silent"
    monitor = await _monitor(silent, good)
    t = FailoverTransport(monitor.url, allowed_hosts="http://127.0.0.1:*", first_token_timeout=0.2)

    def post() -> str:
        with httpx2.Client(transport=t) as client:
            resp = client.post("http://gateway.invalid/v1/chat/completions", json=STREAM)
            return resp.headers["X-LibertAI-Host"]

    assert await asyncio.to_thread(post) == good.url
    t.close()
    await monitor.stop()
