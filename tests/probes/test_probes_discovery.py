"""fetch_models and check_gateway_key against a loopback gateway: never raise, never lose secrets."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from aiohttp import web

from monitor.core.results import Outcome
from monitor.probe.discovery import DiscoveryResult, check_gateway_key, fetch_models

LISTING = {
    "hermes-3-8b": {"servers": ["https://A.libertai.io/", "https://b.libertai.io", "bogus"]},
    "hermes-3-8b-thinking": {"servers": ["https://a.libertai.io"]},
}


class Gateway:
    def __init__(self) -> None:
        self.mode = "ok"
        self.headers: list[dict[str, str]] = []
        self.url = ""

    async def models(self, request: web.Request) -> web.StreamResponse:
        self.headers.append(dict(request.headers))
        mode = self.mode
        if mode == "ok":
            return web.json_response(LISTING)
        if mode == "html":
            return web.Response(text="<html>maintenance</html>", content_type="text/html")
        if mode == "badjson":
            return web.Response(text='{"m": {"servers": [', content_type="application/json")
        if mode == "empty":
            return web.json_response({})
        if mode == "shape":
            return web.json_response({"m": {"servers": "https://a.io"}})
        if mode == "500":
            return web.json_response({"detail": "boom"}, status=500)
        if mode == "redirect":
            raise web.HTTPFound(location="/elsewhere")
        if mode == "big":
            return web.json_response(
                {f"m{i}": {"servers": ["https://a.libertai.io"] * 10} for i in range(2000)}
            )
        await asyncio.sleep(3600)  # hang
        raise AssertionError

    async def auth(self, request: web.Request) -> web.StreamResponse:
        self.headers.append(dict(request.headers))
        if self.mode == "hang":
            await asyncio.sleep(3600)
        ok = request.headers.get("Authorization") == "Bearer sk-live-TOPSECRET-9f8e7d6c5b4a3210"
        status = int(self.mode) if self.mode.isdigit() else (200 if ok else 401)
        return web.json_response({}, status=status)


@pytest.fixture
async def gateway(aiohttp_server: Any) -> Gateway:
    gw = Gateway()
    app = web.Application()
    app.router.add_get("/libertai/models", gw.models)
    app.router.add_get("/libertai/auth/check", gw.auth)
    server = await aiohttp_server(app)
    gw.url = str(server.make_url("/"))
    return gw


async def test_fetch_models_ok_normalised_without_key(gateway: Gateway, session: Any) -> None:
    before = time.time()
    result = await fetch_models(session, gateway.url, timeout=2.0)
    assert result.ok and result.error is None
    assert result.models == {
        "hermes-3-8b": ("https://a.libertai.io", "https://b.libertai.io"),
        "hermes-3-8b-thinking": ("https://a.libertai.io",),
    }
    assert len(result.warnings) == 1 and "bogus" in result.warnings[0]
    assert result.fetched_at >= before and result.duration_s > 0
    assert "Authorization" not in gateway.headers[0]


@pytest.mark.parametrize(
    ("mode", "error"),
    [
        ("html", "invalid JSON"),
        ("badjson", "invalid JSON"),
        ("empty", "invalid listing: listing is empty"),
        ("shape", "invalid listing: model 'm': servers is not a list of strings"),
        ("500", "HTTP 500"),
        ("redirect", "HTTP 302: redirect not followed"),
    ],
)
async def test_fetch_models_bad_answer_is_error_not_exception(
    gateway: Gateway, session: Any, mode: str, error: str
) -> None:
    gateway.mode = mode
    result = await fetch_models(session, gateway.url, timeout=2.0)
    assert not result.ok and result.models is None and result.error is not None
    assert result.error.startswith(error)


async def test_fetch_models_hang_is_timeout_error(gateway: Gateway, session: Any) -> None:
    gateway.mode = "hang"
    t0 = time.perf_counter()
    result = await fetch_models(session, gateway.url, timeout=0.3)
    assert not result.ok and result.error == "timeout after 0.3 s"
    assert time.perf_counter() - t0 < 0.3 + 3.0  # ended by its timeout (generous: a busy machine adds)


async def test_fetch_models_body_over_bound_is_error(gateway: Gateway, session: Any) -> None:
    gateway.mode = "big"
    result = await fetch_models(session, gateway.url, timeout=2.0, max_bytes=10_000)
    assert not result.ok and result.error == "listing exceeds 10000 bytes"


async def test_fetch_models_closed_port_is_connect_error(session: Any, closed_port: int) -> None:
    result = await fetch_models(session, f"http://127.0.0.1:{closed_port}", timeout=2.0)
    assert isinstance(result, DiscoveryResult) and not result.ok
    assert result.error is not None and result.error.startswith("connect_error")


async def test_check_gateway_key_ok(gateway: Gateway, session: Any, api_key: Any) -> None:
    assert await check_gateway_key(session, gateway.url, api_key, timeout=2.0) is Outcome.OK
    assert gateway.headers[0]["Authorization"] == f"Bearer {api_key.reveal()}"


@pytest.mark.parametrize(
    ("mode", "outcome"),
    [
        ("401", Outcome.KEY_REJECTED),
        ("403", Outcome.KEY_REJECTED),
        ("404", Outcome.UNSUPPORTED),
        ("502", Outcome.SERVER_ERROR),
        ("hang", Outcome.TIMEOUT),
    ],
)
async def test_check_gateway_key_failures(
    gateway: Gateway, session: Any, api_key: Any, mode: str, outcome: Outcome
) -> None:
    gateway.mode = mode
    assert await check_gateway_key(session, gateway.url, api_key, timeout=0.3) is outcome


async def test_check_gateway_key_closed_port(session: Any, api_key: Any, closed_port: int) -> None:
    result = await check_gateway_key(session, f"http://127.0.0.1:{closed_port}", api_key, timeout=1.0)
    assert result is Outcome.CONNECT_ERROR
