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
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from monitor.sim.behaviour import Plan, is_down, pick_error, plan_generation, sample_ms
from monitor.sim.capacity import ModelCapacity, prefix_digests, prompt_units
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
from monitor.sim.keys import KeyStatus, blocked_body, presented_key
from monitor.sim.model import as_model
from monitor.sim.specs import Behaviour
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


@dataclass(frozen=True, slots=True)
class _Generation:
    """One text generation as asked, planned once it has a slot, answered streamed or whole."""

    host: SimHost
    behaviour: Behaviour
    t0: float
    capacity: ModelCapacity
    max_tokens: int | None
    cached: bool  # the whole prompt is in the host's `cached_ttft` prompt cache
    prefixes: list[bytes]
    fmt: StreamFormat


@dataclass(frozen=True, slots=True)
class _Started:
    """A generation that got its slot at `start`: its plan, and how it ends when nothing fails."""

    start: float
    plan: Plan
    finish: str


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
        t0 = self._state.clock.monotonic()
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
        if b.paths is not None and path not in b.paths:
            return _detail(400, "Invalid inference path")
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
        if key_status is KeyStatus.BLOCKED:
            return _json(403, blocked_body(self._state.keyring))
        if b.key_blocked:
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
            await self._state.clock.sleep(b.header_delay_ms / 1000.0)
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
        if "messages" not in body and "prompt" not in body:
            # As vLLM: a body without a prompt is invalid, refused before any generation.
            return _detail(422, "Field 'messages' is required")
        max_tokens = body.get("max_tokens", body.get("max_completion_tokens"))
        if max_tokens is not None and (not isinstance(max_tokens, int) or max_tokens < 1):
            return _detail(422, "max_tokens must be a positive integer")
        prompt = dumps([model, body.get("messages", body.get("prompt"))])
        cached = host.seen_prompt(hashlib.blake2b(prompt, digest_size=16).hexdigest())
        options = body.get("stream_options")
        include_usage = isinstance(options, dict) and options.get("include_usage") is True
        prompt_tokens = max(1, (max(1, request.content_length or 0) // 4 or 1) + b.tokenizer_offset)
        fmt = fmt_factory(model, prompt_tokens, include_usage)
        if endpoint == "/v1/chat/completions":
            fmt = as_model(fmt, body, b, host.rng)
        prefixes = prefix_digests(prompt_units(body)) if b.cache_ttl is not None else []
        g = _Generation(host, b, t0, host.model_capacity(model), max_tokens, cached, prefixes, fmt)
        if body.get("stream") is True:
            return await self._stream(request, g)
        return await self._whole(request, g)

    def _start(self, g: _Generation, waited: bool) -> _Started:
        """Plan a generation that just got its slot (the prefix cache is looked up now). Its TTFT
        runs from the arrival, or from the slot for a request that waited in the queue."""
        now = self._state.clock.monotonic()
        hit = g.capacity.prefix_hit(g.prefixes, now, g.behaviour.cache_ttl)
        plan = plan_generation(g.behaviour, g.host.rng, g.max_tokens, g.cached, hit)
        finish = "length" if g.max_tokens is not None and plan.tokens >= g.max_tokens else "stop"
        return _Started(now if waited else g.t0, plan, finish)

    async def _stream(self, request: web.Request, g: _Generation) -> web.StreamResponse:
        resp = web.StreamResponse(headers=_SSE_HEADERS)
        # Headers go out at once, as real hosts send them before the first token (and before a slot).
        await resp.prepare(request)
        async with g.capacity.slot(g.behaviour.slots) as waited:
            await self._stream_tokens(resp, g, self._start(g, waited))
        return resp

    async def _stream_tokens(self, resp: web.StreamResponse, g: _Generation, s: _Started) -> None:
        host, b, t0, fmt, plan, finish = g.host, g.behaviour, g.t0, g.fmt, s.plan, s.finish
        clock = self._state.clock
        # Sleep to absolute deadlines so the simulator's own work does not add up over a stream.
        deadline = s.start + plan.ttft_s
        await clock.sleep(deadline - clock.monotonic())
        mid_fault = b.fault in ("error_event", "cut")
        n = min(plan.tokens, b.fault_after_tokens) if mid_fault else plan.tokens
        if b.fault == "bad_json" or n == 0:
            # Nothing usable before the fault: a broken event, an error event, or just the end.
            first = fmt.bad() if b.fault == "bad_json" else fmt.error() if b.fault == "error_event" else b""
            if first:
                await resp.write(first)
                host.ttft_truth_ms.append((clock.monotonic() - t0) * 1000.0)
            await resp.write_eof()
            return
        await resp.write(fmt.first())
        host.ttft_truth_ms.append((clock.monotonic() - t0) * 1000.0)
        if b.fault == "endless":
            i = 1
            while True:
                deadline += max(0.001, sample_ms(b.itl, host.rng) / 1000.0)
                await clock.sleep(deadline - clock.monotonic())
                await resp.write(fmt.token(i))
                i += 1
        sent = clock.monotonic()
        for i in range(1, n):
            deadline += plan.gaps_s[i - 1]
            await clock.sleep(deadline - clock.monotonic())
            await resp.write(fmt.token(i))
            now = clock.monotonic()
            host.itl_truth_ms.append((now - sent) * 1000.0)
            sent = now
        if b.fault == "error_event":
            await resp.write(fmt.error())
        elif b.fault != "cut":
            await resp.write(fmt.end(n, finish))
        await resp.write_eof()

    async def _whole(self, request: web.Request, g: _Generation) -> web.StreamResponse:
        host, b, t0, fmt = g.host, g.behaviour, g.t0, g.fmt
        clock = self._state.clock
        async with g.capacity.slot(b.slots) as waited:
            s = self._start(g, waited)
            await clock.sleep(s.start + s.plan.total_s - clock.monotonic())
            if b.fault == "error_event":
                return _detail(500, "upstream model crashed mid-generation")
            if b.fault == "bad_json":
                body = b'{"id": "chatcmpl-broken", "choices": ['
            else:
                body = fmt.complete(s.plan.tokens, s.finish)
            if b.fault in ("cut", "endless"):
                # Promise the whole body, send half of it, then cut the connection (or stall forever).
                resp = web.StreamResponse(headers={"Content-Type": _JSON, "Content-Length": str(len(body))})
                await resp.prepare(request)
                await resp.write(body[: len(body) // 2])
                host.ttft_truth_ms.append((clock.monotonic() - t0) * 1000.0)
                if b.fault == "endless":
                    await _forever()
                if request.transport is not None:
                    request.transport.abort()
                return resp
            host.ttft_truth_ms.append((clock.monotonic() - t0) * 1000.0)
            return web.Response(body=body, content_type=_JSON)

    async def _answer_after_ttft(self, host: SimHost, b: Behaviour, t0: float, model: str) -> None:
        """Hold a slot of `model` for one TTFT (embeddings and images have no tokens to stream)."""
        clock = self._state.clock
        async with host.model_capacity(model).slot(b.slots) as waited:
            start = clock.monotonic() if waited else t0
            await clock.sleep(start + sample_ms(b.ttft, host.rng) / 1000.0 - clock.monotonic())
        host.ttft_truth_ms.append((clock.monotonic() - t0) * 1000.0)

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
        await self._answer_after_ttft(host, b, t0, model)
        if b.fault == "bad_json":
            payload = b'{"object": "list", "data": ['
        else:
            payload = embeddings_body(model, inputs, host.models[model].dim, encoding)
        return web.Response(body=payload, content_type=_JSON)

    async def _images(
        self, request: web.Request, host: SimHost, b: Behaviour, t0: float
    ) -> web.StreamResponse:
        admitted = await self._admit(request, host, b, "/v1/images/generations", "image")
        if isinstance(admitted, web.Response):
            return admitted
        await self._answer_after_ttft(host, b, t0, admitted[1])
        return web.Response(body=image_body(), content_type=_JSON)
