"""ETag, `Cache-Control: max-age` and CORS on the monitor's JSON answers (an aiohttp middleware).

- `/v1/best` and `/v1/best/{model}` get a WEAK ETag over what a client acts on: the body without
  `generated_at` and, per host, only its URL and state. Measurements move on every probe while
  the choice stays, and a client that asks every few seconds should pay a 304, not a new body,
  until the choice changes (a weak validator means exactly "equivalent for its use").
- `/v1/hosts` and `/libertai/models` get a strong ETag over the exact bytes sent.
- A matching `If-None-Match` answers 304 with no body. Answers are built once per snapshot and the
  same bytes object is served until the next one, so each ETag is computed once per body (a small
  memo keyed by the body object itself), never per request.
- `Cache-Control: max-age=2` (the snapshot is re-ranked at least every 2 s), and CORS headers so a
  browser page on another origin can read the answers (and their ETag); OPTIONS preflights answer
  204 here.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import json
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Middleware

__all__ = ["MAX_AGE_S", "cache_headers", "etag_of", "matches"]

MAX_AGE_S = 2
_EXACT = {"/v1/best": "weak", "/v1/hosts": "strong", "/libertai/models": "strong"}
_CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Expose-Headers": "ETag, Cache-Control",
}
_PREFLIGHT = {
    **_CORS,
    "Access-Control-Allow-Methods": "GET, HEAD, OPTIONS",
    "Access-Control-Allow-Headers": "If-None-Match, Accept",
    "Access-Control-Max-Age": "86400",
}
_OFF_LOOP_BYTES = 64 * 1024  # larger bodies are hashed in a worker thread


def _kind(path: str) -> str | None:
    if path.startswith("/v1/best/"):
        return "weak"
    return _EXACT.get(path)


def _decision(data: Any) -> Any:
    """What a client acts on in a best answer: no timestamp, and per host only URL and state."""
    if not isinstance(data, dict):
        return data
    out = {k: v for k, v in data.items() if k != "generated_at"}
    hosts = out.get("hosts")
    if isinstance(hosts, list):
        out["hosts"] = [
            {k: h.get(k) for k in ("model", "url", "state")} if isinstance(h, dict) else h for h in hosts
        ]
    return out


def etag_of(body: bytes, kind: str, gzipped: bool) -> str:
    """The ETag of an answer's body as sent: strong over the bytes, or weak over its decision."""
    if kind == "strong":
        return '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"'
    plain = gzip.decompress(body) if gzipped else body
    canonical = json.dumps(_decision(json.loads(plain)), sort_keys=True, separators=(",", ":")).encode()
    return 'W/"' + hashlib.blake2b(canonical, digest_size=12).hexdigest() + '"'


def matches(if_none_match: str | None, etag: str) -> bool:
    """Weak comparison (RFC 9110 13.1.2), as If-None-Match uses."""
    if not if_none_match:
        return False
    if if_none_match.strip() == "*":
        return True
    mine = etag.removeprefix("W/")
    return any(tag.strip().removeprefix("W/") == mine for tag in if_none_match.split(","))


class _Memo:
    """ETags of the last bodies served, keyed by the body object (kept alive here, so its id
    cannot be reused while it is in the memo)."""

    def __init__(self, size: int = 256) -> None:
        self._size = size
        self._items: OrderedDict[int, tuple[bytes, str]] = OrderedDict()

    async def get(self, body: bytes, kind: str, gzipped: bool) -> str:
        hit = self._items.get(id(body))
        if hit is not None and hit[0] is body:
            self._items.move_to_end(id(body))
            return hit[1]
        if len(body) > _OFF_LOOP_BYTES:
            etag = await asyncio.get_running_loop().run_in_executor(None, etag_of, body, kind, gzipped)
        else:
            etag = etag_of(body, kind, gzipped)
        self._items[id(body)] = (body, etag)
        if len(self._items) > self._size:
            self._items.popitem(last=False)
        return etag


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def cache_headers() -> Middleware:
    """The middleware, with its own memo (one per application): put it first in the list, so it
    also sees the answers other middlewares make (errors get CORS headers too)."""
    memo = _Memo()

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        kind = _kind(request.path)
        if kind is None:
            return await handler(request)
        if request.method == "OPTIONS":
            return web.Response(status=204, headers=_PREFLIGHT)
        response = await handler(request)
        response.headers.update(_CORS)
        body = response.body if isinstance(response, web.Response) else None
        if request.method not in ("GET", "HEAD") or response.status != 200 or not isinstance(body, bytes):
            return response
        try:
            etag = await memo.get(body, kind, response.headers.get("Content-Encoding") == "gzip")
        except (ValueError, OSError):  # not the JSON we expected: serve it without a validator
            return response
        cache = {"ETag": etag, "Cache-Control": f"max-age={MAX_AGE_S}"}
        if matches(request.headers.get("If-None-Match"), etag):
            vary = {"Vary": response.headers["Vary"]} if "Vary" in response.headers else {}
            return web.Response(status=304, headers={**cache, **vary, **_CORS})
        response.headers.update(cache)
        return response

    return middleware
