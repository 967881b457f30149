"""What real hosts do with reasoning ids, a prompt cache, and a
configured time between tokens."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from monitor.core.clock import FakeClock
from monitor.core.secret import Secret
from monitor.core.urls import AllowList
from monitor.probe.bodies import completion_body
from monitor.probe.prober import Prober
from monitor.sim.testing import AUTH, KEY, StartNet, chat_body, scenario_of, sse_data, until


async def test_a_host_answers_404_to_a_thinking_id(start_net: StartNet, http: aiohttp.ClientSession) -> None:
    net = await start_net(scenario_of({}))
    async with http.post(
        f"{net.host_url('h0')}/v1/chat/completions", json=chat_body("m-thinking"), headers=AUTH
    ) as r:
        assert r.status == 404


async def test_a_host_accepts_the_base_id_with_chat_template_kwargs(
    start_net: StartNet, http: aiohttp.ClientSession
) -> None:
    net = await start_net(scenario_of({}))
    body = {**chat_body("m"), "chat_template_kwargs": {"enable_thinking": True}}
    async with http.post(f"{net.host_url('h0')}/v1/chat/completions", json=body, headers=AUTH) as r:
        assert r.status == 200


async def test_the_gateway_maps_a_thinking_id_to_its_base_with_thinking_on(
    start_net: StartNet, http: aiohttp.ClientSession
) -> None:
    net = await start_net(scenario_of({}))
    async with http.post(
        f"{net.gateway_url}/v1/chat/completions", json=chat_body("m-thinking"), headers=AUTH
    ) as r:
        assert r.status == 200
    (host,) = net.ground_truth()["hosts"]
    assert host["via_gateway"] == {"/v1/chat/completions": 1}


async def test_a_repeated_prompt_is_answered_from_the_prompt_cache(
    start_net: StartNet, http: aiohttp.ClientSession
) -> None:
    net = await start_net(scenario_of({"ttft": 80, "cached_ttft": 1}))
    for _ in range(3):
        async with http.post(
            f"{net.host_url('h0')}/v1/chat/completions", json=chat_body(), headers=AUTH
        ) as r:
            await r.read()
    (host,) = net.ground_truth()["hosts"]
    assert host["prompt_cache_hits"] == 2
    assert host["ttft_truth_ms"][0] >= 80  # a sleep is never shorter than asked


async def test_different_prompts_miss_the_prompt_cache(
    start_net: StartNet, http: aiohttp.ClientSession
) -> None:
    net = await start_net(scenario_of({"ttft": 20, "cached_ttft": 1}))
    for i in range(3):
        body = {**chat_body(), "messages": [{"role": "user", "content": f"{i} Hi"}]}
        async with http.post(f"{net.host_url('h0')}/v1/chat/completions", json=body, headers=AUTH) as r:
            await r.read()
    (host,) = net.ground_truth()["hosts"]
    assert host["prompt_cache_hits"] == 0
    assert min(host["ttft_truth_ms"]) >= 20


async def test_a_host_without_a_prompt_cache_takes_its_ttft_for_every_prompt(
    start_net: StartNet, http: aiohttp.ClientSession
) -> None:
    net = await start_net(scenario_of({"ttft": 20}))
    for _ in range(2):
        async with http.post(
            f"{net.host_url('h0')}/v1/chat/completions", json=chat_body(), headers=AUTH
        ) as r:
            await r.read()
    (host,) = net.ground_truth()["hosts"]
    assert min(host["ttft_truth_ms"]) >= 20


async def test_a_stream_spaces_its_tokens_by_the_configured_gap(
    start_net: StartNet, http: aiohttp.ClientSession
) -> None:
    # On a fake clock the gaps are exactly the configured ones, however busy the machine is.
    clock = FakeClock()
    net = await start_net(scenario_of({"itl": 15, "tokens": 6}), clock=clock)

    async def stream() -> list[str]:
        body = chat_body(stream=True)
        async with http.post(f"{net.host_url('h0')}/v1/chat/completions", json=body, headers=AUTH) as r:
            return await sse_data(r)

    task = asyncio.create_task(stream())
    await until(lambda: net.ground_truth()["hosts"][0]["capacity"]["m"]["served"] == 1, "served")
    await clock.advance(1)
    await asyncio.wait_for(task, 10)
    (host,) = net.ground_truth()["hosts"]
    assert host["itl_truth_ms"] == pytest.approx([15] * 5)


async def test_the_completion_probe_measures_the_uncached_first_token(
    start_net: StartNet, http: aiohttp.ClientSession
) -> None:
    net = await start_net(scenario_of({"ttft": 60, "cached_ttft": 1}))
    prober = Prober(http, Secret(KEY), 5.0, allow=AllowList.parse("http://127.0.0.1:*"))
    results = [await prober.completion(net.host_url("h0"), "m", reasoning=True) for _ in range(3)]
    (host,) = net.ground_truth()["hosts"]
    assert host["prompt_cache_hits"] == 0
    assert all(r.ok and r.ttft_ms is not None and r.ttft_ms >= 60 for r in results)


async def test_a_repeated_probe_prompt_would_have_been_answered_from_the_cache(
    start_net: StartNet, http: aiohttp.ClientSession
) -> None:
    # What the nonce prevents: the same body three times hits the host's prompt cache twice.
    net = await start_net(scenario_of({"ttft": 60, "cached_ttft": 1}))
    for _ in range(3):
        async with http.post(
            f"{net.host_url('h0')}/v1/chat/completions",
            data=completion_body("m"),
            headers={**AUTH, "Content-Type": "application/json"},
        ) as r:
            await r.read()
    (host,) = net.ground_truth()["hosts"]
    assert host["prompt_cache_hits"] == 2
