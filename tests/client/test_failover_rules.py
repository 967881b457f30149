"""What the transports decide, seen from outside: aliases, broken streams, the monitor going away,
where the key goes, stickiness, refresh pacing, and what each attempt reports."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx2
import openai
import pytest

from monitor.core.clock import FakeClock
from monitor.sim import SimNetwork
from monitor.sim.testing import scenario_of
from tests.client.sdk import LOOPBACK, MESSAGES, chat, in_thread, wire
from tests.client.support import KEY, RecordingHost, StubMonitor, answer, requests_to

StartHost = Callable[[], Awaitable[RecordingHost]]
BOTH = "http://127.0.0.1:*,http://localhost:*"


@pytest.mark.parametrize("sync", [True, False], ids=["sync", "async"])
async def test_a_thinking_alias_reaches_the_host_as_its_base_id_with_the_answers_fields(
    monitor: StubMonitor, recording_host: StartHost, sync: bool
) -> None:
    host = await recording_host()
    fields = {"chat_template_kwargs": {"enable_thinking": True}}
    monitor.answers["m-thinking"] = answer("m-thinking", host.url, upstream_model="m", request_fields=fields)
    w = wire(monitor.url, allowed_hosts=BOTH)
    assert await chat(w, "http://127.0.0.1:9", sync=sync, stream=False, model="m-thinking") == host.url
    assert host.bodies[0]["model"] == "m"
    assert host.bodies[0]["chat_template_kwargs"] == {"enable_thinking": True}
    assert host.bodies[0]["messages"] == MESSAGES


async def test_an_answer_without_upstream_model_sends_the_model_id_unchanged(
    monitor: StubMonitor, recording_host: StartHost
) -> None:
    host = await recording_host()
    monitor.answers["x"] = answer("x", host.url)
    w = wire(monitor.url, allowed_hosts=BOTH)
    await chat(w, "http://127.0.0.1:9", sync=False, stream=False, model="x")
    assert host.bodies[0]["model"] == "x"
    assert "chat_template_kwargs" not in host.bodies[0]


@pytest.mark.parametrize("sync", [True, False], ids=["sync", "async"])
async def test_a_stream_that_breaks_after_it_started_is_reported_not_retried(
    net: SimNetwork, monitor: StubMonitor, recording_host: StartHost, sync: bool
) -> None:
    host = await recording_host()
    host.cut_after = 2
    monitor.answers["m"] = answer("m", host.url, [net.host_url("h1")])
    w = wire(monitor.url, net, allowed_hosts=BOTH)
    if sync:
        client = w.sync_openai(net.gateway_url)

        def read() -> int:
            stream = client.chat.completions.create(model="m", messages=MESSAGES, stream=True)
            got = 0
            with pytest.raises(openai.APIConnectionError):
                for _ in stream:
                    got += 1
            return got

        received = await in_thread(read)
    else:
        stream = await w.async_openai(net.gateway_url).chat.completions.create(
            model="m", messages=MESSAGES, stream=True
        )
        received = 0
        with pytest.raises(openai.APIConnectionError):
            async for _ in stream:
                received += 1
    assert received == 2
    assert requests_to(net, "h1") == 0 and requests_to(net, "gateway") == 0
    assert [(a.host, a.reason.value) for a in w.attempts] == [(host.url, "ok"), (host.url, "stream_error")]


async def test_the_monitor_stopped_mid_run_changes_nothing(
    net: SimNetwork, monitor: StubMonitor, clock: FakeClock
) -> None:
    w = wire(monitor.url, net, clock=clock)
    assert await chat(w, net.gateway_url, sync=False, stream=False) == net.host_url("h0")
    await monitor.stop()
    await clock.advance(60)
    for _ in range(3):
        assert await chat(w, net.gateway_url, sync=False, stream=True) == net.host_url("h0")
        await w.aio.refreshes_done()
    assert requests_to(net, "gateway") == 0


@pytest.mark.parametrize("sync", [True, False], ids=["sync", "async"])
async def test_without_any_answer_from_the_monitor_requests_go_to_the_gateway(
    net: SimNetwork, sync: bool
) -> None:
    w = wire("http://127.0.0.1:9", net)  # nothing listens there
    assert await chat(w, net.gateway_url, sync=sync, stream=False) == net.gateway_url
    assert requests_to(net, "gateway") == 1


async def test_a_model_the_monitor_does_not_know_goes_to_the_gateway(
    net: SimNetwork, monitor: StubMonitor
) -> None:
    w = wire(monitor.url, net)
    with pytest.raises(openai.NotFoundError):  # the simulated gateway does not know it either
        await w.async_openai(net.gateway_url).chat.completions.create(model="nope", messages=MESSAGES)
    assert [a.host for a in w.attempts] == [net.gateway_url]


@pytest.mark.parametrize("sync", [True, False], ids=["sync", "async"])
async def test_the_key_never_reaches_a_host_the_allow_list_refuses(
    net: SimNetwork, monitor: StubMonitor, recording_host: StartHost, sync: bool
) -> None:
    outsider = await recording_host()  # http://localhost:PORT, outside http://127.0.0.1:*
    monitor.answers["m"] = answer("m", outsider.url, [net.host_url("h1")])
    w = wire(monitor.url, net, allowed_hosts=LOOPBACK)
    assert await chat(w, net.gateway_url, sync=sync, stream=False) == net.host_url("h1")
    assert outsider.keys == []


async def test_a_sticky_host_left_out_of_the_answer_gets_nothing_more(
    net: SimNetwork, monitor: StubMonitor, clock: FakeClock
) -> None:
    w = wire(monitor.url, net, clock=clock)
    assert await chat(w, net.gateway_url, sync=False, stream=False) == net.host_url("h0")
    monitor.answers["m"] = answer("m", net.host_url("h1"))
    await clock.advance(5)
    await chat(w, net.gateway_url, sync=False, stream=False)  # starts the refresh in the background
    await w.aio.refreshes_done()
    before = requests_to(net, "h0")
    for _ in range(3):
        assert await chat(w, net.gateway_url, sync=False, stream=False) == net.host_url("h1")
    assert requests_to(net, "h0") == before


async def test_the_last_successful_host_is_kept_while_the_monitor_sees_it_up(
    net: SimNetwork, monitor: StubMonitor, clock: FakeClock
) -> None:
    w = wire(monitor.url, net, clock=clock)
    assert await chat(w, net.gateway_url, sync=False, stream=False) == net.host_url("h0")
    monitor.answers["m"] = answer("m", net.host_url("h1"), [net.host_url("h0")])  # h1 now best
    await clock.advance(5)
    await chat(w, net.gateway_url, sync=False, stream=False)
    await w.aio.refreshes_done()
    assert await chat(w, net.gateway_url, sync=False, stream=False) == net.host_url("h0")
    monitor.answers["m"] = answer("m", net.host_url("h1"), [net.host_url("h0")], up=[net.host_url("h1")])
    await clock.advance(5)
    await chat(w, net.gateway_url, sync=False, stream=False)
    await w.aio.refreshes_done()
    assert await chat(w, net.gateway_url, sync=False, stream=False) == net.host_url("h1")


@pytest.mark.parametrize("sync", [True, False], ids=["sync", "async"])
async def test_the_monitor_is_read_at_most_once_per_refresh_and_unchanged_answers_cost_a_304(
    net: SimNetwork, monitor: StubMonitor, clock: FakeClock, sync: bool
) -> None:
    w = wire(monitor.url, net, clock=clock, refresh=5)

    async def burst(n: int) -> None:
        for _ in range(n):
            await chat(w, net.gateway_url, sync=sync, stream=False)
        if sync:
            await in_thread(w.sync.refreshes_done)
        else:
            await w.aio.refreshes_done()

    await burst(4)
    assert monitor.hits == [("m", 200)]
    await clock.advance(4.9)
    await burst(3)
    assert monitor.hits == [("m", 200)]
    await clock.advance(0.1)
    await burst(3)
    assert monitor.hits == [("m", 200), ("m", 304)]
    monitor.answers["m"] = answer("m", net.host_url("h1"))
    await clock.advance(5)
    await burst(1)
    assert monitor.hits[-1] == ("m", 200)


async def test_requests_without_a_model_go_to_the_gateway_unchanged(
    net: SimNetwork, monitor: StubMonitor, recording_host: StartHost
) -> None:
    gateway = await recording_host()
    w = wire(monitor.url, gateway_url=gateway.url)
    async with httpx2.AsyncClient(transport=w.aio) as client:
        await client.post(gateway.url + "/v1/audio/speech", content=b"\x00binary", headers={"X-Api-Key": KEY})
        await client.post(gateway.url + "/v1/embeddings", json={"input": "no model"})
        await client.get(gateway.url + "/v1/models")
    assert gateway.raw == [
        ("POST", "/v1/audio/speech", b"\x00binary"),
        ("POST", "/v1/embeddings", b'{"input":"no model"}'),
        ("GET", "/v1/models", b""),
    ]
    assert gateway.keys[0] == KEY
    assert monitor.hits == []


async def test_each_attempt_is_logged_and_the_response_names_the_host(
    net: SimNetwork, monitor: StubMonitor, caplog: pytest.LogCaptureFixture
) -> None:
    net.set_host("h0", errors={"503": 1.0})
    w = wire(monitor.url, net)
    with caplog.at_level(logging.INFO, logger="monitor.client"):
        raw = await w.async_openai(net.gateway_url).chat.completions.with_raw_response.create(
            model="m", messages=MESSAGES
        )
    assert raw.headers["X-LibertAI-Host"] == net.host_url("h1")
    (record,) = [r for r in caplog.records if r.name == "monitor.client"]
    assert record.__dict__["host"] == net.host_url("h0") and record.__dict__["reason"] == "server_error"
    assert record.__dict__["elapsed_s"] >= 0
    assert KEY not in caplog.text
    assert [a.status for a in w.attempts] == [503, 200]


async def test_a_host_that_just_failed_is_not_tried_first_again(
    net: SimNetwork, monitor: StubMonitor
) -> None:
    net.set_host("h0", errors={"500": 1.0})
    w = wire(monitor.url, net)
    await chat(w, net.gateway_url, sync=False, stream=False)
    w.attempts.clear()
    assert await chat(w, net.gateway_url, sync=False, stream=False) == net.host_url("h1")
    assert [a.host for a in w.attempts] == [net.host_url("h1")]


@pytest.mark.parametrize("pinned", [True, False], ids=["ca-bundle", "no-ca-bundle"])
async def test_a_self_signed_host_is_reached_with_its_ca_bundle(
    tmp_path: Path, recording_host: StartHost, pinned: bool
) -> None:
    async with SimNetwork(scenario_of({"tls": True}, {}), seed=1, keys=[KEY]) as tls_net:
        stub = await StubMonitor().start()
        try:
            stub.answers["m"] = answer("m", tls_net.host_url("h0"), [tls_net.host_url("h1")])
            ca = tmp_path / "ca.pem"
            ca.write_bytes(tls_net.ca_pem)
            options = {"ca_bundle": str(ca)} if pinned else {}
            w = wire(stub.url, tls_net, allowed_hosts="http://127.0.0.1:*,https://127.0.0.1:*", **options)
            answered = await chat(w, tls_net.gateway_url, sync=False, stream=False)
        finally:
            await stub.stop()
    if pinned:
        assert answered == tls_net.host_url("h0")
    else:
        assert answered == tls_net.host_url("h1")
        assert w.attempts[0].reason.value == "tls_error"


async def test_concurrent_first_requests_share_one_read_of_the_monitor(
    net: SimNetwork, monitor: StubMonitor
) -> None:
    import asyncio

    w = wire(monitor.url, net)
    hosts = await asyncio.gather(*(chat(w, net.gateway_url, sync=False, stream=False) for _ in range(5)))
    assert set(hosts) == {net.host_url("h0")}
    assert monitor.hits == [("m", 200)]


async def test_a_host_that_times_out_before_its_headers_is_passed_over(
    net: SimNetwork, monitor: StubMonitor
) -> None:
    net.set_host("h0", fault="hang")
    w = wire(monitor.url, net)
    body = {"model": "m", "messages": MESSAGES}
    async with httpx2.AsyncClient(transport=w.aio, timeout=0.5) as client:
        resp = await client.post(
            net.gateway_url + "/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {KEY}"}
        )
    assert resp.status_code == 200 and resp.headers["X-LibertAI-Host"] == net.host_url("h1")
    assert [(a.host, a.reason.value) for a in w.attempts] == [
        (net.host_url("h0"), "timeout"),
        (net.host_url("h1"), "ok"),
    ]
