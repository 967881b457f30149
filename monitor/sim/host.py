"""HTTP handlers of the simulated CRN hosts.

One aiohttp application serves every host; each host listens on its own port and a request finds
its host by the local port it arrived on. Order of checks on a request mirrors a real host behind
its reverse proxy: down / hang / redirect (the proxy), then the key, then the model, then errors
and faults of the inference server itself.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from monitor.sim.behaviour import Plan, is_down, pick_error, plan_generation, sample_ms
from monitor.sim.formats import (
    HTML_ERROR_PAGE,
    ChatFormat,
    CompletionFormat,
    MessagesFormat,
    StreamFormat,
    dumps,
    embeddings_body,
    image_body,
)
from monitor.sim.keys import KeyStatus, presented_key
from monitor.sim.scenario import Behaviour
from monitor.sim.state import SimHost, SimState

VIA_HEADER = "X-Sim-Via"
_DIRECT = web.RequestKey("sim_direct", bool)
_JSON = "application/json"
_SSE_HEADERS = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
_ERROR_DETAIL = {
    429: "Rate limit exceeded",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}

Handler = Callable[[web.Request, SimHost, Behaviour, float], Awaitable[web.StreamResponse]]
FormatFactory = Callable[[str, int, bool], StreamFormat]


def _json(status: int, obj: Any, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(status=status, body=dumps(obj), content_type=_JSON, headers=headers)


def _detail(status: int, detail: str, headers: dict[str, str] | None = None) -> web.Response:
    return _json(status, {"detail": detail}, headers)


async def _forever() -> None:
    # Cancelled when the client goes away (the runner uses handler_cancellation) or at shutdown.
    await asyncio.Event().wait()


class HostApp:
    def __init__(self, state: SimState) -> None:
        self._state = state
        self._post: dict[str, Handler] = {
            "/v1/chat/completions": self._chat,
            "/v1/completions": self._completions,
            "/v1/messages": self._messages,
            "/v1/embeddings": self._embeddings,
            "/v1/images/generations": self._images,
        }

    def application(self) -> web.Application:
        app = web.Application()
        # One catch-all route: every request is counted, whatever its path, before any decision.
        app.router.add_route("*", "/{tail:.*}", self.handle)
        return app

    async def handle(self, request: web.Request) -> web.StreamResponse:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        transport = request.transport
        sockname = transport.get_extra_info("sockname") if transport is not None else None
        host = self._state.by_port.get(sockname[1]) if sockname else None
        if host is None:
            return _detail(404, "Not Found")
        path = request.path
        key_status = self._state.keyring.status(presented_key(request.headers))
        # What the simulated gateway forwards is kept apart: the ground truth is what clients sent.
        direct = VIA_HEADER not in request.headers
        request[_DIRECT] = direct
        if direct:
            host.traffic.count(path, key_status)
        else:
            host.via_gateway[path] = host.via_gateway.get(path, 0) + 1
        b = host.behaviour

        if is_down(b, self._state.elapsed()):
            if b.down_mode == "refuse":
                # The listener is closed too; this only catches a kept-alive connection.
                if transport is not None:
                    transport.abort()
                await _forever()
            return _detail(503, "Service Unavailable")
        if b.fault == "hang":
            await _forever()
        if b.fault == "redirect":
            target = self._state.hosts[b.redirect_to].direct_url + request.path_qs
            return web.Response(status=b.redirect_status, headers={"Location": target})

        method = request.method
        if path.startswith("/health/"):
            if method != "GET":
                return _detail(405, "Method Not Allowed")
            model = path[len("/health/") :]
            if direct:
                host.record_model(model, "/health")
            if model not in host.models:
                return _detail(404, f"Model {model} not found")
            if not b.loaded:
                return _json(202, {"status": "capable"})
            return _json(200, {"status": "ok"})
        if path == "/libertai/auth/check":
            # Real hosts have no such route; they answer it 405, which a monitor must read as
            # "not supported here", never as the host being down.
            return _detail(405, "Method Not Allowed")
        handler = self._post.get(path)
        if handler is None:
            return _detail(404, "Not Found")
        if method != "POST":
            return _detail(405, "Method Not Allowed")
        return await handler(request, host, b, t0)

    # -- shared prelude of every billed endpoint ------------------------------------------------

    async def _admit(
        self, request: web.Request, host: SimHost, b: Behaviour, endpoint: str, kind: str
    ) -> tuple[dict[str, Any], str] | web.Response:
        """The parsed body and model, or the error response a real host would give."""
        try:
            body = json.loads(await request.read())
        except ValueError:
            return _detail(422, "Request body is not valid JSON")
        if not isinstance(body, dict):
            return _detail(422, "Request body must be a JSON object")
        model = body.get("model")
        if not isinstance(model, str):
            return _detail(422, "Field 'model' is required")
        if request[_DIRECT]:
            host.record_model(model, endpoint)
        key_status = self._state.keyring.status(presented_key(request.headers))
        if key_status is KeyStatus.MISSING or key_status is KeyStatus.INVALID:
            return _detail(401, "Invalid API key")
        if key_status is KeyStatus.BLOCKED or b.key_blocked:
            return _detail(403, "API key blocked")
        if not b.key_distributed:
            return _detail(401, "Invalid API key")
        spec = host.models.get(model)
        if spec is None:
            return _detail(404, f"Model {model} not found")
        if spec.kind != kind:
            return _detail(404, f"Model {model} does not serve {endpoint}")
        status = pick_error(b, host.rng)
        if status is not None:
            headers = {"Retry-After": f"{b.retry_after:g}"} if status == 429 else None
            return _detail(status, _ERROR_DETAIL.get(status, "Error"), headers)
        if b.fault == "html":
            return web.Response(status=b.html_status, body=HTML_ERROR_PAGE, content_type="text/html")
        if b.fault == "slow_headers":
            await asyncio.sleep(b.header_delay_ms / 1000.0)
        return body, model

    # -- endpoints ------------------------------------------------------------------------------

    async def _chat(self, request: web.Request, host: SimHost, b: Behaviour, t0: float) -> web.StreamResponse:
        return await self._generate(request, host, b, t0, "/v1/chat/completions", ChatFormat)

    async def _completions(
        self, request: web.Request, host: SimHost, b: Behaviour, t0: float
    ) -> web.StreamResponse:
        return await self._generate(request, host, b, t0, "/v1/completions", CompletionFormat)

    async def _messages(
        self, request: web.Request, host: SimHost, b: Behaviour, t0: float
    ) -> web.StreamResponse:
        return await self._generate(request, host, b, t0, "/v1/messages", MessagesFormat)

    async def _generate(
        self,
        request: web.Request,
        host: SimHost,
        b: Behaviour,
        t0: float,
        endpoint: str,
        fmt_factory: FormatFactory,
    ) -> web.StreamResponse:
        admitted = await self._admit(request, host, b, endpoint, "text")
        if isinstance(admitted, web.Response):
            return admitted
        body, model = admitted
        max_tokens = body.get("max_tokens", body.get("max_completion_tokens"))
        if max_tokens is not None and (not isinstance(max_tokens, int) or max_tokens < 1):
            return _detail(422, "max_tokens must be a positive integer")
        prompt = dumps([model, body.get("messages", body.get("prompt"))])
        cached = host.seen_prompt(hashlib.blake2b(prompt, digest_size=16).hexdigest())
        plan = plan_generation(b, host.rng, max_tokens, cached)
        finish = "length" if max_tokens is not None and plan.tokens >= max_tokens else "stop"
        options = body.get("stream_options")
        include_usage = isinstance(options, dict) and options.get("include_usage") is True
        prompt_tokens = max(1, request.content_length or 0) // 4 or 1
        fmt = fmt_factory(model, prompt_tokens, include_usage)
        if body.get("stream") is True:
            return await self._stream(request, host, b, t0, plan, fmt, finish)
        return await self._whole(request, host, b, t0, plan, fmt, finish)

    async def _stream(
        self,
        request: web.Request,
        host: SimHost,
        b: Behaviour,
        t0: float,
        plan: Plan,
        fmt: StreamFormat,
        finish: str,
    ) -> web.StreamResponse:
        loop = asyncio.get_running_loop()
        resp = web.StreamResponse(headers=_SSE_HEADERS)
        # Headers go out at once, as real hosts send them before the first token.
        await resp.prepare(request)
        # Sleep to absolute deadlines so the simulator's own work does not add up over a stream.
        deadline = t0 + plan.ttft_s
        await asyncio.sleep(deadline - loop.time())
        mid_fault = b.fault in ("error_event", "cut")
        n = min(plan.tokens, b.fault_after_tokens) if mid_fault else plan.tokens
        if b.fault == "bad_json" or n == 0:
            # Nothing usable before the fault: a broken event, an error event, or just the end.
            first = fmt.bad() if b.fault == "bad_json" else fmt.error() if b.fault == "error_event" else b""
            if first:
                await resp.write(first)
                host.ttft_truth_ms.append((loop.time() - t0) * 1000.0)
            await resp.write_eof()
            return resp
        await resp.write(fmt.first())
        host.ttft_truth_ms.append((loop.time() - t0) * 1000.0)
        if b.fault == "endless":
            i = 1
            while True:
                deadline += max(0.001, sample_ms(b.itl, host.rng) / 1000.0)
                await asyncio.sleep(deadline - loop.time())
                await resp.write(fmt.token(i))
                i += 1
        sent = loop.time()
        for i in range(1, n):
            deadline += plan.gaps_s[i - 1]
            await asyncio.sleep(deadline - loop.time())
            await resp.write(fmt.token(i))
            now = loop.time()
            host.itl_truth_ms.append((now - sent) * 1000.0)
            sent = now
        if b.fault == "error_event":
            await resp.write(fmt.error())
        elif b.fault != "cut":
            await resp.write(fmt.end(n, finish))
        await resp.write_eof()
        return resp

    async def _whole(
        self,
        request: web.Request,
        host: SimHost,
        b: Behaviour,
        t0: float,
        plan: Plan,
        fmt: StreamFormat,
        finish: str,
    ) -> web.StreamResponse:
        loop = asyncio.get_running_loop()
        await asyncio.sleep(t0 + plan.total_s - loop.time())
        if b.fault == "error_event":
            return _detail(500, "upstream model crashed mid-generation")
        if b.fault == "bad_json":
            body = b'{"id": "chatcmpl-broken", "choices": ['
        else:
            body = fmt.complete(plan.tokens, finish)
        if b.fault in ("cut", "endless"):
            # Promise the whole body, send half of it, then cut the connection (or stall forever).
            resp = web.StreamResponse(headers={"Content-Type": _JSON, "Content-Length": str(len(body))})
            await resp.prepare(request)
            await resp.write(body[: len(body) // 2])
            host.ttft_truth_ms.append((loop.time() - t0) * 1000.0)
            if b.fault == "endless":
                await _forever()
            if request.transport is not None:
                request.transport.abort()
            return resp
        host.ttft_truth_ms.append((loop.time() - t0) * 1000.0)
        return web.Response(body=body, content_type=_JSON)

    async def _embeddings(
        self, request: web.Request, host: SimHost, b: Behaviour, t0: float
    ) -> web.StreamResponse:
        admitted = await self._admit(request, host, b, "/v1/embeddings", "embedding")
        if isinstance(admitted, web.Response):
            return admitted
        body, model = admitted
        raw = body.get("input")
        inputs = [raw] if isinstance(raw, str) else raw
        if not isinstance(inputs, list) or not inputs or not all(isinstance(x, str) for x in inputs):
            return _detail(422, "Field 'input' must be a string or a list of strings")
        encoding = "base64" if body.get("encoding_format") == "base64" else "float"
        loop = asyncio.get_running_loop()
        await asyncio.sleep(t0 + sample_ms(b.ttft, host.rng) / 1000.0 - loop.time())
        if b.fault == "bad_json":
            payload = b'{"object": "list", "data": ['
        else:
            payload = embeddings_body(model, inputs, host.models[model].dim, encoding)
        host.ttft_truth_ms.append((loop.time() - t0) * 1000.0)
        return web.Response(body=payload, content_type=_JSON)

    async def _images(
        self, request: web.Request, host: SimHost, b: Behaviour, t0: float
    ) -> web.StreamResponse:
        admitted = await self._admit(request, host, b, "/v1/images/generations", "image")
        if isinstance(admitted, web.Response):
            return admitted
        loop = asyncio.get_running_loop()
        await asyncio.sleep(t0 + sample_ms(b.ttft, host.rng) / 1000.0 - loop.time())
        host.ttft_truth_ms.append((loop.time() - t0) * 1000.0)
        return web.Response(body=image_body(), content_type=_JSON)
