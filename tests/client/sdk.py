"""The official SDKs wired to the failover transports, as the README shows, for the tests."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import anthropic
import httpx2
import openai

from monitor.client import HOST_HEADER, AsyncFailoverTransport, Attempt, FailoverTransport
from monitor.sim import SimNetwork
from tests.client.support import KEY

LOOPBACK = "http://127.0.0.1:*"
MESSAGES: Any = [{"role": "user", "content": "Hi"}]
T = TypeVar("T")


@dataclass
class Wired:
    """One network, one transport of each kind, and both SDKs on each."""

    sync: FailoverTransport
    aio: AsyncFailoverTransport
    attempts: list[Attempt] = field(default_factory=list)

    def sync_openai(self, base: str) -> openai.OpenAI:
        return openai.OpenAI(
            base_url=base + "/v1", api_key=KEY, max_retries=0, http_client=httpx2.Client(transport=self.sync)
        )

    def async_openai(self, base: str) -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(
            base_url=base + "/v1",
            api_key=KEY,
            max_retries=0,
            http_client=httpx2.AsyncClient(transport=self.aio),
        )

    def sync_anthropic(self, base: str) -> anthropic.Anthropic:
        return anthropic.Anthropic(
            base_url=base, api_key=KEY, max_retries=0, http_client=httpx2.Client(transport=self.sync)
        )

    def async_anthropic(self, base: str) -> anthropic.AsyncAnthropic:
        return anthropic.AsyncAnthropic(
            base_url=base, api_key=KEY, max_retries=0, http_client=httpx2.AsyncClient(transport=self.aio)
        )


def wire(monitor_url: str, net: SimNetwork | None = None, **options: Any) -> Wired:
    attempts: list[Attempt] = []
    options.setdefault("allowed_hosts", LOOPBACK)
    if net is not None:
        options.setdefault("gateway_url", net.gateway_url)
    options.setdefault("on_attempt", attempts.append)
    return Wired(
        FailoverTransport(monitor_url, **options), AsyncFailoverTransport(monitor_url, **options), attempts
    )


async def in_thread(call: Callable[[], T]) -> T:
    """A sync SDK call, run off the loop that serves the simulated hosts and the monitor."""
    return await asyncio.to_thread(call)


async def chat(w: Wired, base: str, *, sync: bool, stream: bool, model: str = "m") -> str:
    """One chat completion through `w`, read to its end; returns the host that answered."""
    if sync:
        client = w.sync_openai(base)

        def call() -> str:
            raw = client.chat.completions.with_raw_response.create(
                model=model, messages=MESSAGES, stream=stream
            )
            parsed: Any = raw.parse()
            if stream:
                chunks = list(parsed)
                assert chunks
            else:
                assert parsed.choices[0].message.content
            return str(raw.headers[HOST_HEADER])

        return await in_thread(call)
    aclient = w.async_openai(base)
    raw = await aclient.chat.completions.with_raw_response.create(
        model=model, messages=MESSAGES, stream=stream
    )
    parsed: Any = raw.parse()
    if inspect.isawaitable(parsed):
        parsed = await parsed
    if stream:
        chunks = [c async for c in parsed]
        assert chunks
    else:
        assert parsed.choices[0].message.content
    return str(raw.headers[HOST_HEADER])
