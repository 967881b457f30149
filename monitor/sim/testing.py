"""Small helpers for tests that run against the simulated network (shared by every test suite)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import aiohttp

from monitor.sim.network import SimNetwork
from monitor.sim.scenario import parse_scenario
from monitor.sim.specs import Scenario

# `await start_net(scenario, seed=..., keys=...)`: the shape of a fixture that starts networks.
StartNet = Callable[..., Awaitable[SimNetwork]]

KEY = "sk-sim-test"
AUTH = {"Authorization": f"Bearer {KEY}"}

TEST_MODELS: tuple[dict[str, Any], ...] = (
    {"id": "m", "reasoning": True},
    {"id": "img", "kind": "image"},
    {"id": "emb", "kind": "embedding", "dim": 8},
)


def scenario_of(
    *hosts: Mapping[str, Any],
    models: Sequence[Mapping[str, Any]] = TEST_MODELS,
    gateway: Mapping[str, Any] | None = None,
    keys: Sequence[str] = (),
    blocked_keys: Sequence[str] = (),
    name: str = "test",
) -> Scenario:
    """A scenario from TOML-shaped host tables. A host is named `h0`, `h1`, ... and serves `m` (a
    reasoning text model) with a 5 ms TTFT and 1 ms between tokens, unless its table says otherwise."""
    data: dict[str, Any] = {
        "name": name,
        "models": [dict(m) for m in models],
        "hosts": [{"name": f"h{i}", "models": ["m"], "ttft": 5, "itl": 1, **h} for i, h in enumerate(hosts)],
        "gateway": dict(gateway or {}),
        "keys": list(keys),
        "blocked_keys": list(blocked_keys),
    }
    return parse_scenario(data, name)


def chat_body(
    model: str = "m", stream: bool = False, max_tokens: int | None = None, include_usage: bool = False
) -> dict[str, Any]:
    body: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": "Hi"}], "stream": stream}
    if max_tokens is not None:
        body["max_tokens"] = max_tokens
    if include_usage:
        body["stream_options"] = {"include_usage": True}
    return body


async def sse_data(resp: aiohttp.ClientResponse) -> list[str]:
    """Every `data:` payload of an SSE body, in order, read until the server ends the body."""
    out: list[str] = []
    async for raw in resp.content:
        line = raw.decode().rstrip("\r\n")
        if line.startswith("data:"):
            out.append(line[5:].strip())
    return out


async def until(check: Callable[[], bool], what: str, polls: int = 2000) -> None:
    """Wait for a state of the network, polling every 5 ms (requests cross real loopback sockets
    even on a fake clock); fail naming `what` if it never comes."""
    for _ in range(polls):
        if check():
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"never reached: {what}")
