"""The API paths each host accepts, learnt by the running service from the simulated network, and
the failover transport that follows them: a host that refuses a path never gets a request to it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from monitor.server import Running, serving
from monitor.sim import SimNetwork
from monitor.sim.testing import scenario_of
from tests.client.sdk import MESSAGES, chat, wire
from tests.client.support import KEY as CLIENT_KEY
from tests.service.support import KEY, eventually, get_json, settings_for

pytestmark = pytest.mark.e2e  # the client, the service and the simulated network

CHAT_ONLY = ["/v1/chat/completions", "/v1/completions"]


def _entry(hosts: list[dict[str, Any]], url: str) -> dict[str, Any]:
    return next((h for h in hosts if h["model"] == "m" and h["url"] == url), {"paths": None})


@pytest.fixture
async def learnt(tmp_path: Path) -> AsyncIterator[tuple[SimNetwork, Running, list[dict[str, Any]]]]:
    """h0 (the fastest) refuses /v1/messages, h1 accepts every path; yields /v1/hosts once the
    monitor has learnt both hosts' paths."""
    scenario = scenario_of({"ttft": 2, "paths": CHAT_ONLY}, {"ttft": 40})
    async with (
        SimNetwork(scenario, seed=5, keys=[KEY, CLIENT_KEY]) as net,
        serving(settings_for(net, tmp_path, PATHS_INTERVAL="1")) as svc,
        aiohttp.ClientSession() as http,
    ):

        async def both_learnt() -> list[dict[str, Any]] | None:
            hosts = (await get_json(http, svc.url + "/v1/hosts"))["hosts"]
            answer = await get_json(http, svc.url + "/v1/best/m")
            ready = answer.get("host") == net.host_url("h0")
            known = all(_entry(hosts, net.host_url(n))["paths"] is not None for n in ("h0", "h1"))
            return hosts if ready and known else None

        yield net, svc, await eventually(both_learnt, timeout=30)


async def test_hosts_show_the_paths_each_host_accepts_and_refuses(
    learnt: tuple[SimNetwork, Running, list[dict[str, Any]]],
) -> None:
    net, _, hosts = learnt
    h0, h1 = _entry(hosts, net.host_url("h0")), _entry(hosts, net.host_url("h1"))
    assert h0["paths"] == CHAT_ONLY
    assert h0["paths_refused"] == ["/v1/embeddings", "/v1/messages"]
    assert h1["paths"] == ["/v1/chat/completions", "/v1/completions", "/v1/messages"]
    # `m` is a text model: its server refuses embeddings (404), whatever the host's paths.
    assert h1["paths_refused"] == ["/v1/embeddings"]


async def test_a_host_that_refuses_messages_never_gets_one_from_the_transport(
    learnt: tuple[SimNetwork, Running, list[dict[str, Any]]],
) -> None:
    net, svc, _ = learnt
    w = wire(svc.url, net)
    client = w.async_anthropic(net.gateway_url)
    for _ in range(5):
        answer = await client.messages.create(model="m", max_tokens=5, messages=MESSAGES)
        assert answer.content
    assert {a.host for a in w.attempts} == {net.host_url("h1")}
    # Chat completions still go to h0, the best host, which accepts them.
    best_only = wire(svc.url, net, spread=False)
    assert await chat(best_only, net.gateway_url, sync=False, stream=False) == net.host_url("h0")
