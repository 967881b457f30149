"""A stub monitor and a recording host for the client's tests: real loopback servers whose answers
a test sets, and which count what they received."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from monitor.sim import SimNetwork

KEY = "sk-client-test-5e4d3c2b1a"
CHAT = "/v1/chat/completions"


def answer(
    model: str,
    host: str | None,
    fallbacks: Sequence[str] = (),
    *,
    up: Sequence[str] | None = None,
    upstream_model: str | None = None,
    request_fields: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A `/v1/best/{model}` answer; every listed host is `up` unless `up` says which are."""
    listed = [h for h in [host, *fallbacks] if h is not None]
    ups = set(listed if up is None else up)
    out: dict[str, Any] = {
        "model": model,
        "host": host,
        "fallbacks": list(fallbacks),
        "generated_at": "2026-12-01T00:00:00.000Z",
        "hosts": [{"model": model, "url": h, "state": "up" if h in ups else "down"} for h in listed],
    }
    if upstream_model is not None:
        out["upstream_model"] = upstream_model
    if request_fields is not None:
        out["request_fields"] = dict(request_fields)
    return out


@dataclass
class StubMonitor:
    """`/v1/best/{model}` from `answers`, with a weak ETag and 304s as the real monitor gives."""

    answers: dict[str, dict[str, Any]] = field(default_factory=dict)
    hits: list[tuple[str, int]] = field(default_factory=list)  # (model, status answered)
    url: str = ""
    _runner: web.AppRunner | None = None

    async def _best(self, request: web.Request) -> web.Response:
        model = request.match_info["model"]
        data = self.answers.get(model)
        if data is None:
            self.hits.append((model, 404))
            return web.json_response({"detail": f"Unknown model {model}"}, status=404)
        body = json.dumps(data).encode()
        etag = 'W/"' + hashlib.blake2b(body, digest_size=8).hexdigest() + '"'
        if request.headers.get("If-None-Match") == etag:
            self.hits.append((model, 304))
            return web.Response(status=304, headers={"ETag": etag})
        self.hits.append((model, 200))
        return web.Response(body=body, content_type="application/json", headers={"ETag": etag})

    async def start(self) -> StubMonitor:
        app = web.Application()
        app.router.add_get("/v1/best/{model}", self._best)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


@dataclass
class RecordingHost:
    """A host that answers chat completions (whole, or a stream cut after `cut_after` chunks) and
    records every request's body and credentials."""

    url: str = ""
    bodies: list[dict[str, Any]] = field(default_factory=list)
    keys: list[str | None] = field(default_factory=list)
    raw: list[tuple[str, str, bytes]] = field(default_factory=list)  # (method, path, body)
    cut_after: int | None = None
    _runner: web.AppRunner | None = None

    async def _any(self, request: web.Request) -> web.StreamResponse:
        self.keys.append(request.headers.get("Authorization") or request.headers.get("x-api-key"))
        raw = await request.read()
        self.raw.append((request.method, request.path, raw))
        try:
            data = json.loads(raw) if raw else {}
        except ValueError:
            data = {}
        self.bodies.append(data)
        if self.cut_after is None:
            return web.json_response(_completion(str(data.get("model"))))
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        for _ in range(self.cut_after):
            chunk = {
                "id": "c",
                "object": "chat.completion.chunk",
                "created": 0,
                "model": "m",
                "choices": [{"index": 0, "delta": {"content": "Hi"}, "finish_reason": None}],
            }
            await resp.write(f"data: {json.dumps(chunk)}\n\n".encode())
        await asyncio.sleep(0.01)
        assert request.transport is not None
        request.transport.abort()  # the host dies mid-stream
        return resp

    async def start(self) -> RecordingHost:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._any)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        # Named `localhost`, so an allow-list of `http://127.0.0.1:*` does not admit it.
        self.url = f"http://localhost:{self._runner.addresses[0][1]}"
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


def _completion(model: str) -> dict[str, Any]:
    return {
        "id": "c",
        "object": "chat.completion",
        "created": 0,
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi"}, "finish_reason": "stop"}],
    }


def requests_to(net: SimNetwork, name: str, path: str = CHAT) -> int:
    """How many requests the simulated host `name` (or "gateway") received on `path`."""
    truth = net.ground_truth()
    if name == "gateway":
        paths = truth["gateway"]["requests"]
    else:
        paths = next(h for h in truth["hosts"] if h["name"] == name)["requests"]
    return int(paths.get(path, {}).get("total", 0))


def key_seen_by(net: SimNetwork, name: str) -> bool:
    truth = net.ground_truth()
    return bool(next(h for h in truth["hosts"] if h["name"] == name)["saw_key"])
