"""Client edge cases with aioresponses (through the conftest shim for aiohttp >= 3.14)."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from monitor.core.results import Outcome
from monitor.core.urls import AllowList
from monitor.probe.discovery import check_gateway_key, fetch_models
from monitor.probe.prober import Prober

HOST = "https://h1.libertai.io"
GATEWAY = "https://api.libertai.io"
ALLOW = AllowList.parse("https://*.libertai.io")


@pytest.fixture
def prober(session: aiohttp.ClientSession, api_key: Any) -> Prober:
    return Prober(session, api_key, 2.0, allow=ALLOW)


async def test_shim_lets_aioresponses_answer(mock_http: Any, session: aiohttp.ClientSession) -> None:
    mock_http.get(f"{GATEWAY}/libertai/models", payload={"m": {"servers": [HOST]}})
    result = await fetch_models(session, GATEWAY, timeout=1.0)
    assert result.ok and result.models == {"m": (HOST,)}


async def test_fetch_models_trailing_slash_gateway_url(
    mock_http: Any, session: aiohttp.ClientSession
) -> None:
    mock_http.get(f"{GATEWAY}/libertai/models", payload={"m": {"servers": [HOST]}})
    assert (await fetch_models(session, GATEWAY + "/", timeout=1.0)).ok


@pytest.mark.parametrize(
    "exc",
    [
        aiohttp.ServerDisconnectedError(),
        aiohttp.ClientOSError(104, "reset"),
        aiohttp.ClientPayloadError("cut"),
        TimeoutError(),
        RuntimeError("unexpected"),
    ],
)
async def test_fetch_models_transport_exception_is_error(
    mock_http: Any, session: aiohttp.ClientSession, exc: Exception
) -> None:
    mock_http.get(f"{GATEWAY}/libertai/models", exception=exc)
    result = await fetch_models(session, GATEWAY, timeout=1.0)
    assert not result.ok and result.error


async def test_fetch_models_list_body_is_invalid(mock_http: Any, session: aiohttp.ClientSession) -> None:
    mock_http.get(f"{GATEWAY}/libertai/models", payload=[{"servers": []}])
    result = await fetch_models(session, GATEWAY, timeout=1.0)
    assert result.error == "invalid listing: listing is not a JSON object"


async def test_fetch_models_non_utf8_body_is_invalid(mock_http: Any, session: aiohttp.ClientSession) -> None:
    mock_http.get(f"{GATEWAY}/libertai/models", body=b"\xff\xfe\x00")
    result = await fetch_models(session, GATEWAY, timeout=1.0)
    assert not result.ok and result.error is not None and result.error.startswith("invalid JSON")


async def test_check_gateway_key_mocked_403(
    mock_http: Any, session: aiohttp.ClientSession, api_key: Any
) -> None:
    mock_http.get(f"{GATEWAY}/libertai/auth/check", status=403)
    assert await check_gateway_key(session, GATEWAY, api_key, timeout=1.0) is Outcome.KEY_REJECTED


@pytest.mark.parametrize(
    ("exc", "outcome"),
    [
        (aiohttp.ServerDisconnectedError(), Outcome.CONNECT_ERROR),
        (aiohttp.ServerTimeoutError(), Outcome.TIMEOUT),
        (aiohttp.ClientPayloadError("cut"), Outcome.BAD_RESPONSE),
        (ValueError("odd"), Outcome.BAD_RESPONSE),
    ],
)
async def test_probe_exception_maps_to_outcome(
    mock_http: Any, prober: Prober, exc: Exception, outcome: Outcome
) -> None:
    mock_http.get(f"{HOST}/health/m", exception=exc)
    result = await prober.health(HOST, "m")
    assert result.outcome is outcome and result.detail.startswith(type(exc).__name__)


async def test_embedding_mocked_ok(mock_http: Any, prober: Prober) -> None:
    mock_http.post(f"{HOST}/v1/embeddings", payload={"data": [{"embedding": [0.1, 0.2]}]})
    assert (await prober.embedding(HOST, "bge-m3")).ok


@pytest.mark.parametrize(
    ("status", "outcome"),
    [(402, Outcome.PAYMENT_REQUIRED), (404, Outcome.UNKNOWN_MODEL), (429, Outcome.RATE_LIMITED)],
)
async def test_embedding_mocked_status(mock_http: Any, prober: Prober, status: int, outcome: Outcome) -> None:
    mock_http.post(f"{HOST}/v1/embeddings", status=status, payload={"detail": "nope"})
    result = await prober.embedding(HOST, "bge-m3")
    assert result.outcome is outcome and result.detail == f"HTTP {status}: nope"


async def test_completion_mocked_whole_stream_ok(mock_http: Any, prober: Prober) -> None:
    body = 'data: {"choices":[{"delta":{"content":"p"}}]}\n\ndata: [DONE]\n\n'
    mock_http.post(f"{HOST}/v1/chat/completions", body=body, content_type="text/event-stream")
    result = await prober.completion(HOST, "m")
    assert result.ok and result.ttft_ms is not None


async def test_completion_mocked_stream_without_trailing_newline(mock_http: Any, prober: Prober) -> None:
    body = 'data: {"choices":[{"delta":{"content":"p"}}]}\n\ndata: [DONE]'
    mock_http.post(f"{HOST}/v1/chat/completions", body=body, content_type="text/event-stream")
    assert (await prober.completion(HOST, "m")).ok


async def test_completion_mocked_crlf_stream(mock_http: Any, prober: Prober) -> None:
    body = 'data: {"choices":[{"delta":{"content":"p"}}]}\r\n\r\ndata: [DONE]\r\n\r\n'
    mock_http.post(f"{HOST}/v1/chat/completions", body=body, content_type="text/event-stream")
    assert (await prober.completion(HOST, "m")).ok


async def test_redirect_mocked_location_never_requested(mock_http: Any, prober: Prober) -> None:
    mock_http.post(
        f"{HOST}/v1/chat/completions", status=307, headers={"Location": "https://evil.example/steal"}
    )
    result = await prober.completion(HOST, "m")
    assert result.outcome is Outcome.BAD_RESPONSE
    assert all(url.host != "evil.example" for _method, url in mock_http.requests)
