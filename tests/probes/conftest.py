"""Fixtures for the URL, discovery, membership and probe tests.

`mock_http`: aioresponses with a shim for aiohttp >= 3.14 (aioresponses 0.7.9 builds responses
without the new `stream_writer` argument; issue #289). `fake_hosts`: a real loopback aiohttp server
whose first path segment picks a behaviour, so one server plays many hosts.
"""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

import aiohttp
import pytest
import trustme
from aiohttp import web

from monitor.core.secret import Secret
from monitor.core.urls import AllowList
from monitor.probe.http import make_session
from monitor.probe.prober import Prober

API_KEY = "sk-live-TOPSECRET-9f8e7d6c5b4a3210"
LOOPBACK_ALLOW = AllowList.parse("http://127.0.0.1:*,https://127.0.0.1:*")


# --------------------------------------------------------------------------- aioresponses shim


class _ShimResponse(aiohttp.ClientResponse):
    """ClientResponse that tolerates aioresponses not passing `stream_writer`."""

    def __init__(self, method: str, url: Any, *, stream_writer: Any = None, **kwargs: Any) -> None:
        if stream_writer is None:
            stream_writer = mock.Mock(output_size=0)
        super().__init__(method, url, stream_writer=stream_writer, **kwargs)


@pytest.fixture
def mock_http(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    from aioresponses import aioresponses, core

    monkeypatch.setattr(core, "ClientResponse", _ShimResponse)
    with aioresponses() as mocked:
        yield mocked


# --------------------------------------------------------------------------- sessions, keys


@pytest.fixture
def api_key() -> Secret:
    return Secret(API_KEY)


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    s = make_session(ca_bundle=None, limit=20, user_agent="libertai-monitor-test")
    yield s
    await s.close()


@pytest.fixture
def make_prober(session: aiohttp.ClientSession, api_key: Secret) -> Callable[..., Prober]:
    def make(timeout: float = 2.0, *, sess: aiohttp.ClientSession | None = None, **kwargs: Any) -> Prober:
        kwargs.setdefault("allow", LOOPBACK_ALLOW)
        return Prober(sess or session, api_key, timeout, **kwargs)

    return make


@pytest.fixture
def closed_port() -> int:
    """A loopback port with nothing listening on it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --------------------------------------------------------------------------- TLS


@dataclass
class Tls:
    ca: trustme.CA
    ca_file: str
    server_ctx: ssl.SSLContext


@pytest.fixture(scope="session")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(server_ctx)
    path: Path = tmp_path_factory.mktemp("tls") / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return Tls(ca, str(path), server_ctx)


# --------------------------------------------------------------------------- fake hosts


def sse(obj: Any) -> bytes:
    return b"data: " + (obj if isinstance(obj, bytes) else json.dumps(obj).encode()) + b"\n\n"


def token_chunk(text: str = "p") -> dict[str, Any]:
    return {
        "id": "c1",
        "object": "chat.completion.chunk",
        "choices": [{"index": 0, "delta": {"role": "assistant", "content": text}, "finish_reason": None}],
    }


USAGE_CHUNK = {"id": "c1", "object": "chat.completion.chunk", "choices": [], "usage": {"total_tokens": 2}}
EMBEDDING = {"object": "list", "data": [{"object": "embedding", "index": 0, "embedding": [0.1, -0.2, 3]}]}


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    raw_path: str = ""


@dataclass
class FakeHosts:
    """One loopback server; `url(scenario)` is a host URL whose behaviour is `scenario`."""

    server: Any
    seen: list[Seen] = field(default_factory=list)
    first_chunk_delay: float = 0.0

    def url(self, scenario: str) -> str:
        return str(self.server.make_url(f"/{scenario}")).rstrip("/")

    def requests_to(self, scenario: str) -> list[Seen]:
        return [s for s in self.seen if s.path.split("/")[1] == scenario]


async def _stream(request: web.Request, parts: list[bytes], *, eof: bool = True) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    for part in parts:
        await response.write(part)
    if eof:
        await response.write_eof()
    return response


def _make_handler(hosts: FakeHosts) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handle(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        hosts.seen.append(Seen(request.method, request.path, dict(request.headers), body, request.raw_path))
        scenario, _, tail = request.path.lstrip("/").partition("/")
        kind = (
            "health"
            if tail.startswith("health/")
            else "auth"
            if tail == "libertai/auth/check"
            else "completion"
            if tail == "v1/chat/completions"
            else "embedding"
            if tail == "v1/embeddings"
            else "other"
        )
        if scenario == "ok":
            if kind == "completion":
                response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
                await response.prepare(request)
                await asyncio.sleep(hosts.first_chunk_delay)
                await response.write(sse(token_chunk()) + sse(USAGE_CHUNK) + sse(b"[DONE]"))
                await response.write_eof()
                return response
            if kind == "embedding":
                return web.json_response(EMBEDDING)
            return web.json_response({"status": "ok"})
        if scenario.startswith("status"):
            status = int(scenario[len("status") :])
            return web.json_response({"detail": f"status {status} here"}, status=status)
        if scenario == "html":
            return web.Response(text="<html><body>502 Bad Gateway</body></html>", content_type="text/html")
        if scenario == "html503":
            return web.Response(text="<html><body>down</body></html>", content_type="text/html", status=503)
        if scenario == "redirect":
            raise web.HTTPFound(location=hosts.url("target") + "/" + tail)
        if scenario == "echo":
            auth = request.headers.get("Authorization", "")
            return web.json_response({"detail": f"Invalid API key {auth} (key={auth[7:]})"}, status=401)
        if scenario == "echohtml":
            auth = request.headers.get("Authorization", "")
            return web.Response(text=f"<p>bad {auth}</p>", status=500, content_type="text/html")
        if scenario == "echoevent":
            auth = request.headers.get("Authorization", "")
            return await _stream(request, [sse(token_chunk()), sse({"error": {"message": f"no {auth}"}})])
        if scenario == "errevent":
            return await _stream(request, [sse(token_chunk()), sse({"error": {"message": "CUDA OOM"}})])
        if scenario == "nodone":
            return await _stream(request, [sse(token_chunk()), sse(USAGE_CHUNK)])
        if scenario == "cut":
            response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
            await response.prepare(request)
            await response.write(sse(token_chunk()))
            await asyncio.sleep(0.05)
            assert request.transport is not None
            request.transport.close()
            return response
        if scenario == "garbage":
            return await _stream(request, [sse(b"{not json"), sse(b"[DONE]")])
        if scenario == "jsonbody":
            return web.json_response({"choices": [{"message": {"content": "p"}}]})
        if scenario == "endless":
            response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
            await response.prepare(request)
            chunk = sse(token_chunk("x" * 200))
            while True:
                await response.write(chunk)
        if scenario == "trickle":
            response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
            await response.prepare(request)
            await response.write(sse(token_chunk()))
            while True:
                await asyncio.sleep(0.05)
                await response.write(b": keep-alive\n\n")
        if scenario == "hang":
            await asyncio.sleep(3600)
        if scenario == "slowheaders200":  # headers at once, then no token before the timeout
            response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
            await response.prepare(request)
            await asyncio.sleep(3600)
        if scenario in ("slowbody200", "slowbody503"):  # headers at once, the body never completes
            response = web.StreamResponse(
                status=int(scenario[-3:]), headers={"Content-Type": "application/json"}
            )
            await response.prepare(request)
            await response.write(b'{"detail": ')
            await asyncio.sleep(3600)
        if scenario == "badembedding":
            return web.json_response({"data": [{"embedding": []}]})
        if scenario == "huge":
            return web.json_response({"data": [{"embedding": [0.5] * 100_000}]})
        return web.json_response({"detail": "Not Found"}, status=404)

    return handle


async def _start(aiohttp_server: Any, **kwargs: Any) -> FakeHosts:
    app = web.Application()
    hosts = FakeHosts(server=None)
    app.router.add_route("*", "/{tail:.*}", _make_handler(hosts))
    hosts.server = await aiohttp_server(app, **kwargs)
    return hosts


@pytest.fixture
async def fake_hosts(aiohttp_server: Any) -> FakeHosts:
    return await _start(aiohttp_server)


@pytest.fixture
async def tls_hosts(aiohttp_server: Any, tls: Tls) -> FakeHosts:
    return await _start(aiohttp_server, ssl=tls.server_ctx)
