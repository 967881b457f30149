"""Both official SDKs, sync and async, streamed and not, through the failover transports against
the simulated network and a stub monitor that names h0 then h1."""

from __future__ import annotations

from typing import Any

import pytest

from monitor.sim import SimNetwork
from tests.client.sdk import MESSAGES, chat, in_thread, wire
from tests.client.support import StubMonitor, requests_to

MODES = [
    pytest.param(True, False, id="sync"),
    pytest.param(True, True, id="sync-stream"),
    pytest.param(False, False, id="async"),
    pytest.param(False, True, id="async-stream"),
]


@pytest.mark.parametrize(("sync", "stream"), MODES)
async def test_openai_request_goes_to_the_best_host(
    net: SimNetwork, monitor: StubMonitor, sync: bool, stream: bool
) -> None:
    w = wire(monitor.url, net)
    assert await chat(w, net.gateway_url, sync=sync, stream=stream) == net.host_url("h0")
    assert requests_to(net, "h0") == 1
    assert requests_to(net, "h1") == requests_to(net, "gateway") == 0


@pytest.mark.parametrize(("sync", "stream"), MODES)
async def test_a_host_killed_between_two_requests_costs_no_failed_request(
    net: SimNetwork, monitor: StubMonitor, sync: bool, stream: bool
) -> None:
    w = wire(monitor.url, net)
    assert await chat(w, net.gateway_url, sync=sync, stream=stream) == net.host_url("h0")
    net.set_host("h0", down=True, down_mode="refuse")
    assert await chat(w, net.gateway_url, sync=sync, stream=stream) == net.host_url("h1")


@pytest.mark.parametrize(
    ("behaviour", "reason"),
    [
        ({"errors": {"500": 1.0}}, "server_error"),
        ({"errors": {"429": 1.0}}, "rate_limited"),
        ({"key_distributed": False}, "key_rejected"),
        ({"key_blocked": True}, "key_rejected"),
    ],
    ids=["500", "429", "401", "403"],
)
@pytest.mark.parametrize("sync", [True, False], ids=["sync", "async"])
async def test_a_failing_host_is_passed_over(
    net: SimNetwork, monitor: StubMonitor, behaviour: dict[str, Any], reason: str, sync: bool
) -> None:
    net.set_host("h0", **behaviour)
    w = wire(monitor.url, net)
    assert await chat(w, net.gateway_url, sync=sync, stream=True) == net.host_url("h1")
    assert [(a.host, a.reason.value, a.passed_over) for a in w.attempts] == [
        (net.host_url("h0"), reason, True),
        (net.host_url("h1"), "ok", False),
    ]


async def test_every_host_failing_ends_at_the_gateway(net: SimNetwork, monitor: StubMonitor) -> None:
    net.set_host("h0", errors={"500": 1.0})
    net.set_host("h1", down=True, down_mode="refuse")
    w = wire(monitor.url, net)
    # The simulated gateway forwards to a host itself: h0 then fails there as well, so it answers 503.
    import openai

    with pytest.raises(openai.InternalServerError):
        await w.async_openai(net.gateway_url).chat.completions.create(model="m", messages=MESSAGES)
    assert [a.host for a in w.attempts] == [net.host_url("h0"), net.host_url("h1"), net.gateway_url]
    assert requests_to(net, "gateway") == 1


async def test_a_4xx_other_than_401_403_429_goes_to_the_caller(net: SimNetwork, monitor: StubMonitor) -> None:
    import openai

    w = wire(monitor.url, net)
    with pytest.raises(openai.UnprocessableEntityError):
        await w.async_openai(net.gateway_url).chat.completions.create(
            model="m", messages=MESSAGES, max_tokens=0
        )
    assert requests_to(net, "h0") == 1 and requests_to(net, "h1") == 0


@pytest.mark.parametrize("sync", [True, False], ids=["sync", "async"])
async def test_anthropic_messages_go_to_the_best_host_and_fail_over(
    net: SimNetwork, monitor: StubMonitor, sync: bool
) -> None:
    w = wire(monitor.url, net)
    if sync:
        client = w.sync_anthropic(net.gateway_url)
        first = await in_thread(lambda: client.messages.create(model="m", max_tokens=5, messages=MESSAGES))
        net.set_host("h0", down=True, down_mode="refuse")

        def streamed() -> str:
            with client.messages.stream(model="m", max_tokens=5, messages=MESSAGES) as stream:
                return "".join(stream.text_stream)

        second = await in_thread(streamed)
    else:
        aclient = w.async_anthropic(net.gateway_url)
        first = await aclient.messages.create(model="m", max_tokens=5, messages=MESSAGES)
        net.set_host("h0", down=True, down_mode="refuse")
        async with aclient.messages.stream(model="m", max_tokens=5, messages=MESSAGES) as astream:
            second = "".join([t async for t in astream.text_stream])
    assert first.content and second
    # The kept-alive connection to h0 may carry the second request before h0 drops it: h0 may
    # count it, but h1 answers it.
    assert requests_to(net, "h1", "/v1/messages") == 1
    assert requests_to(net, "gateway", "/v1/messages") == 0
    assert [a.host for a in w.attempts if not a.passed_over] == [net.host_url("h0"), net.host_url("h1")]
