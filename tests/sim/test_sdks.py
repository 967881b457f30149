"""The official `openai` and `anthropic` SDKs against simulated hosts and the gateway: every configured
failure is seen the way these SDKs report it."""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import AsyncIterator
from typing import Any

import anthropic
import httpx2
import openai
import pytest

from monitor.sim import SimNetwork
from monitor.sim.testing import StartNet, scenario_of

MESSAGES: Any = [{"role": "user", "content": "Hi"}]


def oai(base: str, **kwargs: Any) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=base + "/v1", api_key="any-key-a-user-types", max_retries=0, **kwargs)


def claude(base: str) -> anthropic.AsyncAnthropic:
    # The Anthropic SDK adds /v1/messages to its base URL itself.
    return anthropic.AsyncAnthropic(base_url=base, api_key="any-key-a-user-types", max_retries=0)


async def host(start_net: StartNet, **behaviour: Any) -> str:
    net = await start_net(scenario_of(behaviour))
    return net.host_url("h0")


async def collect(stream: AsyncIterator[Any]) -> list[Any]:
    return [chunk async for chunk in stream]


# -- OpenAI SDK: the happy paths ------------------------------------------------------------------------


async def test_openai_chat_completion_from_a_host(start_net: StartNet) -> None:
    client = oai(await host(start_net, tokens=4))
    answer = await client.chat.completions.create(model="m", messages=MESSAGES)
    assert answer.choices[0].message.content == "Hello from a simulated"
    assert answer.choices[0].finish_reason == "stop"
    assert answer.usage is not None and answer.usage.completion_tokens == 4


async def test_openai_streamed_chat_from_a_host_with_usage(start_net: StartNet) -> None:
    client = oai(await host(start_net, tokens=3))
    stream = await client.chat.completions.create(
        model="m", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    chunks = await collect(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hello from a"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].usage.completion_tokens == 3


async def test_openai_through_the_gateway_streamed_and_not(start_net: StartNet) -> None:
    net = await start_net(scenario_of({"errors": {"503": 1.0}}, {"tokens": 2}))
    client = oai(net.gateway_url)
    answer = await client.chat.completions.create(model="m-thinking", messages=MESSAGES)
    assert answer.choices[0].message.content == "Hello from"
    chunks = await collect(await client.chat.completions.create(model="m", messages=MESSAGES, stream=True))
    assert chunks[-1].choices[0].finish_reason == "stop"


async def test_openai_embeddings_decoded_from_base64(start_net: StartNet) -> None:
    net = await start_net(scenario_of({"models": ["emb"]}))
    result = await oai(net.host_url("h0")).embeddings.create(model="emb", input=["a", "b"])
    assert len(result.data) == 2 and len(result.data[0].embedding) == 8


async def test_openai_with_the_network_ca_reaches_a_tls_host(start_net: StartNet) -> None:
    net = await start_net(scenario_of({"tls": True}))
    ctx = ssl.create_default_context(cadata=net.ca_pem.decode())
    client = oai(net.host_url("h0"), http_client=httpx2.AsyncClient(verify=ctx))
    answer = await client.chat.completions.create(model="m", messages=MESSAGES)
    assert answer.choices[0].message.content


# -- OpenAI SDK: failures -----------------------------------------------------------------------------


async def test_openai_sees_a_key_not_distributed_as_authentication_error(start_net: StartNet) -> None:
    client = oai(await host(start_net, key_distributed=False))
    with pytest.raises(openai.AuthenticationError) as info:
        await client.chat.completions.create(model="m", messages=MESSAGES)
    assert info.value.body == {"detail": "Invalid API key"}


async def test_openai_sees_a_blocked_key_as_permission_denied(start_net: StartNet) -> None:
    client = oai(await host(start_net, key_blocked=True))
    with pytest.raises(openai.PermissionDeniedError):
        await client.chat.completions.create(model="m", messages=MESSAGES)


async def test_openai_sees_a_thinking_id_on_a_host_as_not_found(start_net: StartNet) -> None:
    client = oai(await host(start_net))
    with pytest.raises(openai.NotFoundError):
        await client.chat.completions.create(model="m-thinking", messages=MESSAGES)


async def test_openai_sees_429_with_retry_after(start_net: StartNet) -> None:
    client = oai(await host(start_net, errors={"429": 1.0}, retry_after=3))
    with pytest.raises(openai.RateLimitError) as info:
        await client.chat.completions.create(model="m", messages=MESSAGES, stream=True)
    assert info.value.response.headers["retry-after"] == "3"


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_openai_sees_5xx_as_internal_server_error(start_net: StartNet, status: int) -> None:
    client = oai(await host(start_net, errors={str(status): 1.0}))
    with pytest.raises(openai.InternalServerError) as info:
        await client.chat.completions.create(model="m", messages=MESSAGES)
    assert info.value.status_code == status


async def test_openai_sees_a_down_host_as_503(start_net: StartNet) -> None:
    client = oai(await host(start_net, down=True))
    with pytest.raises(openai.InternalServerError) as info:
        await client.chat.completions.create(model="m", messages=MESSAGES)
    assert info.value.status_code == 503


async def test_openai_sees_a_refusing_host_as_a_connection_error(start_net: StartNet) -> None:
    client = oai(await host(start_net, down=True, down_mode="refuse"))
    with pytest.raises(openai.APIConnectionError):
        await client.chat.completions.create(model="m", messages=MESSAGES)


async def test_openai_sees_a_hang_as_a_timeout(start_net: StartNet) -> None:
    client = oai(await host(start_net, fault="hang"), timeout=0.3)
    with pytest.raises(openai.APITimeoutError):
        await client.chat.completions.create(model="m", messages=MESSAGES, stream=True)


async def test_openai_sees_slow_headers_as_a_timeout(start_net: StartNet) -> None:
    client = oai(await host(start_net, fault="slow_headers", header_delay_ms=2000), timeout=0.3)
    with pytest.raises(openai.APITimeoutError):
        await client.chat.completions.create(model="m", messages=MESSAGES, stream=True)


async def test_openai_sees_an_error_event_mid_stream_as_api_error(start_net: StartNet) -> None:
    client = oai(await host(start_net, fault="error_event"))
    stream = await client.chat.completions.create(model="m", messages=MESSAGES, stream=True)
    received = []
    with pytest.raises(openai.APIError, match="crashed"):
        async for chunk in stream:
            received.append(chunk)
    assert len(received) == 1


async def test_openai_sees_a_cut_stream_end_without_a_finish_reason(start_net: StartNet) -> None:
    client = oai(await host(start_net, fault="cut"))
    chunks = await collect(await client.chat.completions.create(model="m", messages=MESSAGES, stream=True))
    assert chunks and all(c.choices[0].finish_reason is None for c in chunks)


async def test_openai_sees_a_cut_json_answer_as_a_connection_error(start_net: StartNet) -> None:
    client = oai(await host(start_net, fault="cut"))
    with pytest.raises(openai.APIConnectionError):
        await client.chat.completions.create(model="m", messages=MESSAGES)


async def test_openai_reads_an_endless_stream_until_the_client_cuts_it(start_net: StartNet) -> None:
    client = oai(await host(start_net, fault="endless", itl=5))
    stream = await client.chat.completions.create(model="m", messages=MESSAGES, stream=True)
    chunks: list[Any] = []

    async def read() -> None:
        async for chunk in stream:
            chunks.append(chunk)

    with pytest.raises(TimeoutError):
        await asyncio.wait_for(read(), timeout=0.3)
    await stream.close()
    assert len(chunks) > 10 and all(c.choices[0].finish_reason is None for c in chunks)


async def test_openai_gets_an_html_page_instead_of_a_completion(start_net: StartNet) -> None:
    client = oai(await host(start_net, fault="html"))
    answer: Any = await client.chat.completions.create(model="m", messages=MESSAGES)
    assert not isinstance(answer, openai.types.chat.ChatCompletion)
    assert "<html>" in str(answer)


async def test_openai_fails_to_decode_bad_json(start_net: StartNet) -> None:
    client = oai(await host(start_net, fault="bad_json"))
    with pytest.raises(json.JSONDecodeError):
        await collect(await client.chat.completions.create(model="m", messages=MESSAGES, stream=True))


async def test_openai_without_the_ca_sees_a_tls_host_as_a_connection_error(start_net: StartNet) -> None:
    client = oai(await host(start_net, tls=True))
    with pytest.raises(openai.APIConnectionError):
        await client.chat.completions.create(model="m", messages=MESSAGES)


async def test_openai_through_the_gateway_sees_503_when_every_host_failed(start_net: StartNet) -> None:
    net = await start_net(scenario_of({"down": True}, {"errors": {"500": 1.0}}))
    with pytest.raises(openai.InternalServerError) as info:
        await oai(net.gateway_url).chat.completions.create(model="m", messages=MESSAGES)
    assert info.value.status_code == 503
    assert info.value.body == {"detail": "All servers unavailable for model m"}


# -- Anthropic SDK ---------------------------------------------------------------------------------


async def test_anthropic_message_from_a_host(start_net: StartNet) -> None:
    message = await claude(await host(start_net, tokens=2)).messages.create(
        model="m", max_tokens=10, messages=MESSAGES
    )
    assert message.content[0].type == "text" and message.content[0].text == "Hello from"
    assert message.stop_reason == "end_turn"


async def test_anthropic_streamed_message_from_a_host(start_net: StartNet) -> None:
    async with claude(await host(start_net, tokens=8)).messages.stream(
        model="m", max_tokens=3, messages=MESSAGES
    ) as stream:
        text = "".join([t async for t in stream.text_stream])
        final = await stream.get_final_message()
    assert text == "Hello from a"
    assert final.stop_reason == "max_tokens" and final.usage.output_tokens == 3


async def test_anthropic_through_the_gateway(start_net: StartNet) -> None:
    net = await start_net(scenario_of({"fault": "hang"}, {"tokens": 2}, gateway={"upstream_timeout": 0.2}))
    message = await claude(net.gateway_url).messages.create(model="m", max_tokens=10, messages=MESSAGES)
    assert message.content[0].type == "text" and message.content[0].text == "Hello from"


async def test_anthropic_sees_a_key_not_distributed_as_authentication_error(start_net: StartNet) -> None:
    with pytest.raises(anthropic.AuthenticationError):
        await claude(await host(start_net, key_distributed=False)).messages.create(
            model="m", max_tokens=10, messages=MESSAGES
        )


async def test_anthropic_sees_an_error_event_mid_stream(start_net: StartNet) -> None:
    received: list[str] = []
    with pytest.raises(anthropic.APIStatusError, match="overloaded_error"):
        async with claude(await host(start_net, fault="error_event")).messages.stream(
            model="m", max_tokens=10, messages=MESSAGES
        ) as stream:
            async for text in stream.text_stream:
                received.append(text)
    assert received == ["Hello"]


async def test_anthropic_sees_429_as_rate_limit_error(start_net: StartNet) -> None:
    with pytest.raises(anthropic.RateLimitError):
        await claude(await host(start_net, errors={"429": 1.0})).messages.create(
            model="m", max_tokens=10, messages=MESSAGES
        )


async def test_sdks_work_against_a_network_started_by_hand() -> None:
    # No fixture: the plain `async with` form the rest of the project uses.
    async with SimNetwork(scenario_of({}), seed=1) as net:
        answer = await oai(net.host_url("h0")).chat.completions.create(model="m", messages=MESSAGES)
    assert answer.choices[0].message.role == "assistant"
