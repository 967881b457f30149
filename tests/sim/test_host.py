"""A simulated CRN host, seen by a plain aiohttp client: endpoints, keys, timing, errors and faults."""

from __future__ import annotations

import base64
import json
import ssl
import struct
import time

import aiohttp
import pytest

from monitor.core.clock import FakeClock
from monitor.sim.testing import AUTH, StartNet, chat_body, scenario_of, sse_data


async def one_host(start_net: StartNet, **behaviour: object) -> str:
    net = await start_net(scenario_of(dict(behaviour)))
    return net.host_url("h0")


# -- health ------------------------------------------------------------------------------------


async def test_health_is_200_when_the_model_is_loaded(
    start_net: StartNet, http: aiohttp.ClientSession
) -> None:
    url = await one_host(start_net)
    async with http.get(f"{url}/health/m") as r:
        assert r.status == 200


async def test_health_is_202_when_the_model_is_not_loaded(
    start_net: StartNet, http: aiohttp.ClientSession
) -> None:
    url = await one_host(start_net, loaded=False)
    async with http.get(f"{url}/health/m") as r:
        assert r.status == 202


async def test_health_is_503_when_the_host_is_down(start_net: StartNet, http: aiohttp.ClientSession) -> None:
    url = await one_host(start_net, down=True)
    async with http.get(f"{url}/health/m") as r:
        assert r.status == 503


async def test_health_is_404_for_a_thinking_id_or_a_model_not_served(
    start_net: StartNet, http: aiohttp.ClientSession
) -> None:
    url = await one_host(start_net)
    for model in ("m-thinking", "other"):
        async with http.get(f"{url}/health/{model}") as r:
            assert r.status == 404


async def test_health_needs_no_key_even_where_the_key_was_not_distributed(
    start_net: StartNet, http: aiohttp.ClientSession
) -> None:
    url = await one_host(start_net, key_distributed=False)
    async with http.get(f"{url}/health/m") as r:
        assert r.status == 200


async def test_auth_check_on_a_host_is_405(start_net: StartNet, http: aiohttp.ClientSession) -> None:
    url = await one_host(start_net)
    async with http.get(f"{url}/libertai/auth/check", headers=AUTH) as r:
        assert r.status == 405


# -- completions ---------------------------------------------------------------------------------


async def test_chat_completion_as_json(start_net: StartNet, http: aiohttp.ClientSession) -> None:
    url = await one_host(start_net, tokens=5)
    async with http.post(f"{url}/v1/chat/completions", json=chat_body(), headers=AUTH) as r:
        assert r.status == 200
        body = await r.json()
    assert body["object"] == "chat.completion"
    assert body["choices"][0]["message"]["role"] == "assistant"
    assert body["choices"][0]["finish_reason"] == "stop"
    assert body["usage"]["completion_tokens"] == 5


async def test_max_tokens_limits_the_answer(start_net: StartNet, http: aiohttp.ClientSession) -> None:
    url = await one_host(start_net, tokens=5)
    async with http.post(f"{url}/v1/chat/completions", json=chat_body(max_tokens=1), headers=AUTH) as r:
        body = await r.json()
    assert body["choices"][0]["finish_reason"] == "length"
    assert body["usage"]["completion_tokens"] == 1


async def test_streamed_chat_is_openai_chunks_ending_with_done(
    start_net: StartNet, http: aiohttp.ClientSession
) -> None:
    url = await one_host(start_net, tokens=4)
    async with http.post(f"{url}/v1/chat/completions", json=chat_body(stream=True), headers=AUTH) as r:
        assert r.headers["Content-Type"].startswith("text/event-stream")
        data = await sse_data(r)
    assert data[-1] == "[DONE]"
    chunks = [json.loads(d) for d in data[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert sum(1 for c in chunks if c["choices"][0]["delta"].get("content")) == 4
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert not any("usage" in c for c in chunks)


async def test_streamed_chat_has_usage_when_include_usage_is_set(
    start_net: StartNet, http: aiohttp.ClientSession
) -> None:
    url = await one_host(start_net, tokens=3)
    body = chat_body(stream=True, include_usage=True)
    async with http.post(f"{url}/v1/chat/completions", json=body, headers=AUTH) as r:
        data = await sse_data(r)
    usage_chunk = json.loads(data[-2])
    assert usage_chunk["choices"] == []
    assert usage_chunk["usage"]["completion_tokens"] == 3


async def test_legacy_completions_stream_too(start_net: StartNet, http: aiohttp.ClientSession) -> None:
    url = await one_host(start_net, tokens=2)
    body = {"model": "m", "prompt": "Hi", "stream": True}
    async with http.post(f"{url}/v1/completions", json=body, headers=AUTH) as r:
        data = await sse_data(r)
    assert data[-1] == "[DONE]"
    assert json.loads(data[0])["object"] == "text_completion"


async def test_headers_come_at_once_and_the_first_token_after_the_ttft(
    start_net: StartNet, http: aiohttp.ClientSession
) -> None:
    url = await one_host(start_net, ttft=300, tokens=1)
    t0 = time.perf_counter()
    async with http.post(f"{url}/v1/chat/completions", json=chat_body(stream=True), headers=AUTH) as r:
        headers_at = time.perf_counter() - t0
        await r.content.readline()
        first_at = time.perf_counter() - t0
    # Robust on a busy machine: a sleep is never shorter than asked, and the headers came first.
    assert headers_at < first_at and first_at >= 0.3


async def test_tokens_are_spaced_by_the_inter_token_time(
    start_net: StartNet, http: aiohttp.ClientSession
) -> None:
    url = await one_host(start_net, ttft=10, itl=50, tokens=5)
    t0 = time.perf_counter()
    async with http.post(f"{url}/v1/chat/completions", json=chat_body(stream=True), headers=AUTH) as r:
        await sse_data(r)
    assert time.perf_counter() - t0 >= 0.21  # 10 ms + 4 x 50 ms; a sleep is never shorter


async def test_anthropic_messages_as_json(start_net: StartNet, http: aiohttp.ClientSession) -> None:
    url = await one_host(start_net, tokens=3)
    body = {"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": "Hi"}]}
    async with http.post(f"{url}/v1/messages", json=body, headers={"x-api-key": "k"}) as r:
        assert r.status == 200
        msg = await r.json()
    assert msg["type"] == "message" and msg["content"][0]["type"] == "text"
    assert msg["stop_reason"] == "end_turn"


async def test_anthropic_messages_stream_named_events(
    start_net: StartNet, http: aiohttp.ClientSession
) -> None:
    url = await one_host(start_net, tokens=2)
    body = {"model": "m", "max_tokens": 10, "stream": True, "messages": [{"role": "user", "content": "Hi"}]}
    async with http.post(f"{url}/v1/messages", json=body, headers={"x-api-key": "k"}) as r:
        text = (await r.read()).decode()
    events = [line[7:] for line in text.splitlines() if line.startswith("event: ")]
    assert events[0] == "message_start" and events[-1] == "message_stop"
    assert events.count("content_block_delta") == 2


async def test_embeddings_as_floats_or_base64(start_net: StartNet, http: aiohttp.ClientSession) -> None:
    net = await start_net(scenario_of({"models": ["emb"]}))
    url = net.host_url("h0")
    async with http.post(
        f"{url}/v1/embeddings", json={"model": "emb", "input": ["a", "b"]}, headers=AUTH
    ) as r:
        floats = await r.json()
    body = {"model": "emb", "input": "a", "encoding_format": "base64"}
    async with http.post(f"{url}/v1/embeddings", json=body, headers=AUTH) as r:
        b64 = await r.json()
    assert len(floats["data"]) == 2 and len(floats["data"][0]["embedding"]) == 8
    decoded = struct.unpack("<8f", base64.b64decode(b64["data"][0]["embedding"]))
    assert decoded == pytest.approx(floats["data"][0]["embedding"])


async def test_a_completion_for_an_embedding_model_is_404(
    start_net: StartNet, http: aiohttp.ClientSession
) -> None:
    net = await start_net(scenario_of({"models": ["emb"]}))
    async with http.post(
        f"{net.host_url('h0')}/v1/chat/completions", json=chat_body("emb"), headers=AUTH
    ) as r:
        assert r.status == 404


# -- keys and models --------------------------------------------------------------------------------


async def test_any_non_empty_key_is_accepted_by_default(
    start_net: StartNet, http: aiohttp.ClientSession
) -> None:
    url = await one_host(start_net)
    headers = {"Authorization": "Bearer whatever-the-user-typed"}
    async with http.post(f"{url}/v1/chat/completions", json=chat_body(), headers=headers) as r:
        assert r.status == 200


async def test_no_key_is_401_invalid_api_key(start_net: StartNet, http: aiohttp.ClientSession) -> None:
    url = await one_host(start_net)
    async with http.post(f"{url}/v1/chat/completions", json=chat_body()) as r:
        assert r.status == 401
        assert await r.json() == {"detail": "Invalid API key"}


async def test_only_the_given_keys_are_valid(start_net: StartNet, http: aiohttp.ClientSession) -> None:
    net = await start_net(scenario_of({}), keys=["sk-good"])
    url = net.host_url("h0")
    for key, status in (("sk-good", 200), ("sk-other", 401)):
        headers = {"Authorization": f"Bearer {key}"}
        async with http.post(f"{url}/v1/chat/completions", json=chat_body(), headers=headers) as r:
            assert r.status == status


async def test_a_key_not_distributed_to_the_host_is_401(
    start_net: StartNet, http: aiohttp.ClientSession
) -> None:
    url = await one_host(start_net, key_distributed=False)
    async with http.post(f"{url}/v1/chat/completions", json=chat_body(), headers=AUTH) as r:
        assert r.status == 401
        assert await r.json() == {"detail": "Invalid API key"}


async def test_a_blocked_key_is_403(start_net: StartNet, http: aiohttp.ClientSession) -> None:
    net = await start_net(scenario_of({}, {"key_blocked": True}, blocked_keys=["sk-stolen"]))
    stolen = {"Authorization": "Bearer sk-stolen"}
    async with http.post(f"{net.host_url('h0')}/v1/chat/completions", json=chat_body(), headers=stolen) as r:
        assert r.status == 403
    async with http.post(f"{net.host_url('h1')}/v1/chat/completions", json=chat_body(), headers=AUTH) as r:
        assert r.status == 403


async def test_a_thinking_id_or_a_model_not_served_is_404(
    start_net: StartNet, http: aiohttp.ClientSession
) -> None:
    url = await one_host(start_net)
    for model in ("m-thinking", "other"):
        async with http.post(f"{url}/v1/chat/completions", json=chat_body(model), headers=AUTH) as r:
            assert r.status == 404


# -- errors ---------------------------------------------------------------------------------------


async def test_429_carries_retry_after(start_net: StartNet, http: aiohttp.ClientSession) -> None:
    url = await one_host(start_net, errors={"429": 1.0}, retry_after=7)
    async with http.post(f"{url}/v1/chat/completions", json=chat_body(), headers=AUTH) as r:
        assert r.status == 429
        assert r.headers["Retry-After"] == "7"


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_server_errors_at_their_rate(
    start_net: StartNet, http: aiohttp.ClientSession, status: int
) -> None:
    url = await one_host(start_net, errors={str(status): 1.0})
    async with http.post(f"{url}/v1/chat/completions", json=chat_body(stream=True), headers=AUTH) as r:
        assert r.status == status


async def test_same_seed_same_errors(start_net: StartNet, http: aiohttp.ClientSession) -> None:
    async def statuses(seed: int) -> list[int]:
        net = await start_net(scenario_of({"errors": {"500": 0.5}}), seed=seed)
        out = []
        for _ in range(16):
            async with http.post(
                f"{net.host_url('h0')}/v1/chat/completions", json=chat_body(), headers=AUTH
            ) as r:
                out.append(r.status)
        return out

    first, again, other = await statuses(3), await statuses(3), await statuses(4)
    assert first == again
    assert first != other
    assert {200, 500} == set(first)


# -- outages ----------------------------------------------------------------------------------------


async def test_a_down_window_ends(start_net: StartNet, http: aiohttp.ClientSession) -> None:
    clock = FakeClock()
    net = await start_net(scenario_of({"down": [[0, 30]]}), clock=clock)
    url = net.host_url("h0")
    async with http.get(f"{url}/health/m") as r:
        assert r.status == 503
    await clock.advance(30)
    async with http.get(f"{url}/health/m") as r:
        assert r.status == 200


async def test_a_flapping_host_goes_down_and_up(start_net: StartNet, http: aiohttp.ClientSession) -> None:
    # Flapping runs on the network's clock: a fake one moves only when the test says so, so the
    # answer at each instant does not depend on how busy the machine is.
    clock = FakeClock()
    net = await start_net(scenario_of({"flap": {"period": 40, "down_for": 20, "offset": 10}}), clock=clock)
    url = net.host_url("h0")
    seen = []
    for _ in range(8):
        async with http.get(f"{url}/health/m") as r:
            seen.append(r.status)
        await clock.advance(5)
    # Elapsed 0, 5 (up), 10, 15, 20, 25 (down), 30, 35 (up again).
    assert seen == [200, 200, 503, 503, 503, 503, 200, 200]


async def test_a_refusing_host_refuses_connections_while_down(
    start_net: StartNet, http: aiohttp.ClientSession
) -> None:
    net = await start_net(scenario_of({"down": True, "down_mode": "refuse"}))
    url = net.host_url("h0")
    with pytest.raises(aiohttp.ClientConnectorError):
        await http.get(f"{url}/health/m")
    net.set_host("h0", down=False)
    async with http.get(f"{url}/health/m") as r:
        assert r.status == 200


async def test_a_refusing_host_drops_kept_alive_connections_when_it_goes_down(
    start_net: StartNet, http: aiohttp.ClientSession
) -> None:
    net = await start_net(scenario_of({"down_mode": "refuse"}))
    url = net.host_url("h0")
    async with http.get(f"{url}/health/m") as r:
        assert r.status == 200
    net.set_host("h0", down=True)
    with pytest.raises(aiohttp.ClientError):
        await http.get(f"{url}/health/m")


# -- faults -----------------------------------------------------------------------------------------


async def test_a_hanging_host_never_answers(start_net: StartNet, http: aiohttp.ClientSession) -> None:
    url = await one_host(start_net, fault="hang")
    with pytest.raises(TimeoutError):
        await http.get(f"{url}/health/m", timeout=aiohttp.ClientTimeout(total=0.3))


async def test_slow_headers_arrive_only_after_the_delay(
    start_net: StartNet, http: aiohttp.ClientSession
) -> None:
    url = await one_host(start_net, fault="slow_headers", header_delay_ms=300, ttft=5)
    t0 = time.perf_counter()
    async with http.post(f"{url}/v1/chat/completions", json=chat_body(stream=True), headers=AUTH) as r:
        assert time.perf_counter() - t0 >= 0.3
        assert (await sse_data(r))[-1] == "[DONE]"


async def test_an_html_error_page(start_net: StartNet, http: aiohttp.ClientSession) -> None:
    url = await one_host(start_net, fault="html")
    async with http.post(f"{url}/v1/chat/completions", json=chat_body(), headers=AUTH) as r:
        assert r.status == 200
        assert r.content_type == "text/html"
        assert "<html>" in await r.text()


async def test_a_redirect_points_to_another_host(start_net: StartNet, http: aiohttp.ClientSession) -> None:
    net = await start_net(scenario_of({"fault": "redirect", "redirect_to": "h1"}, {"listed": False}))
    url = net.host_url("h0")
    async with http.post(
        f"{url}/v1/chat/completions", json=chat_body(), headers=AUTH, allow_redirects=False
    ) as r:
        assert r.status == 307
        assert r.headers["Location"] == f"{net.host_url('h1')}/v1/chat/completions"


async def test_an_error_event_mid_stream_and_no_done(
    start_net: StartNet, http: aiohttp.ClientSession
) -> None:
    url = await one_host(start_net, fault="error_event", fault_after_tokens=2)
    async with http.post(f"{url}/v1/chat/completions", json=chat_body(stream=True), headers=AUTH) as r:
        data = await sse_data(r)
    assert len(data) == 3
    assert "error" in json.loads(data[-1])
    assert "[DONE]" not in data


async def test_an_error_event_comes_even_when_one_token_was_asked(
    start_net: StartNet, http: aiohttp.ClientSession
) -> None:
    url = await one_host(start_net, fault="error_event", fault_after_tokens=3)
    body = chat_body(stream=True, max_tokens=1)
    async with http.post(f"{url}/v1/chat/completions", json=body, headers=AUTH) as r:
        data = await sse_data(r)
    assert "error" in json.loads(data[-1])


async def test_a_cut_stream_ends_without_done(start_net: StartNet, http: aiohttp.ClientSession) -> None:
    url = await one_host(start_net, fault="cut", tokens=5)
    async with http.post(f"{url}/v1/chat/completions", json=chat_body(stream=True), headers=AUTH) as r:
        data = await sse_data(r)
    assert len(data) == 1
    assert json.loads(data[0])["choices"][0]["finish_reason"] is None


async def test_a_cut_json_answer_is_truncated(start_net: StartNet, http: aiohttp.ClientSession) -> None:
    url = await one_host(start_net, fault="cut")
    async with http.post(f"{url}/v1/chat/completions", json=chat_body(), headers=AUTH) as r:
        with pytest.raises(aiohttp.ClientPayloadError):
            await r.read()


async def test_an_endless_stream_never_ends(start_net: StartNet, http: aiohttp.ClientSession) -> None:
    url = await one_host(start_net, fault="endless", itl=5, tokens=2)
    chunks = 0
    async with http.post(f"{url}/v1/chat/completions", json=chat_body(stream=True), headers=AUTH) as r:
        deadline = time.perf_counter() + 0.3
        while time.perf_counter() < deadline:
            line = await r.content.readline()
            assert line != b"data: [DONE]\n"
            chunks += line.startswith(b"data:")
    assert chunks > 10


async def test_bad_json_in_the_stream(start_net: StartNet, http: aiohttp.ClientSession) -> None:
    url = await one_host(start_net, fault="bad_json")
    async with http.post(f"{url}/v1/chat/completions", json=chat_body(stream=True), headers=AUTH) as r:
        data = await sse_data(r)
    with pytest.raises(ValueError):
        json.loads(data[0])


async def test_bad_json_as_a_whole_answer(start_net: StartNet, http: aiohttp.ClientSession) -> None:
    url = await one_host(start_net, fault="bad_json")
    async with http.post(f"{url}/v1/chat/completions", json=chat_body(), headers=AUTH) as r:
        with pytest.raises(ValueError):
            await r.json()


# -- TLS ----------------------------------------------------------------------------------------------


async def test_a_tls_host_is_trusted_with_the_network_ca(
    start_net: StartNet, http: aiohttp.ClientSession
) -> None:
    net = await start_net(scenario_of({"tls": True}))
    url = net.host_url("h0")
    assert url.startswith("https://127.0.0.1:")
    ctx = ssl.create_default_context(cadata=net.ca_pem.decode())
    async with http.get(f"{url}/health/m", ssl=ctx) as r:
        assert r.status == 200


async def test_a_tls_host_fails_verification_without_the_ca(
    start_net: StartNet, http: aiohttp.ClientSession
) -> None:
    net = await start_net(scenario_of({"tls": True}))
    with pytest.raises(aiohttp.ClientConnectorCertificateError):
        await http.get(f"{net.host_url('h0')}/health/m")


async def test_unknown_paths_are_404(start_net: StartNet, http: aiohttp.ClientSession) -> None:
    url = await one_host(start_net)
    async with http.get(f"{url}/v1/models", headers=AUTH) as r:
        assert r.status == 404
