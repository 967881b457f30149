"""ETag, `Cache-Control: max-age` and CORS on the monitor's JSON answers (an aiohttp middleware).

- An answer carries its ETag (set by the handler, made with the answer: `monitor.core.answer`):
  weak for `/v1/best` and `/v1/best/{model}` (over what a client acts on, so that measurements
  moving on every probe cost a client a 304, not a new body, until the choice changes), strong
  over the bytes for `/v1/hosts` and `/libertai/models`.
- A matching `If-None-Match` answers 304 with no body.
- `Cache-Control: max-age=2` (the snapshot is re-ranked at least every 2 s), and CORS headers so a
  browser page on another origin can read the answers (and their ETag); OPTIONS preflights answer
  204 here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.typedefs import Middleware

__all__ = ["MAX_AGE_S", "cache_headers", "matches"]

MAX_AGE_S = 2
_ANSWERS = frozenset({"/v1/best", "/v1/hosts", "/libertai/models"})
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


def _is_answer(path: str) -> bool:
    return path in _ANSWERS or path.startswith("/v1/best/")


def matches(if_none_match: str | None, etag: str) -> bool:
    """Weak comparison (RFC 9110 13.1.2), as If-None-Match uses."""
    if not if_none_match:
        return False
    if if_none_match.strip() == "*":
        return True
    mine = etag.removeprefix("W/")
    return any(tag.strip().removeprefix("W/") == mine for tag in if_none_match.split(","))


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def cache_headers() -> Middleware:
    """The middleware: put it first in the list, so it also sees the answers other middlewares
    make (errors get CORS headers too)."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not _is_answer(request.path):
            return await handler(request)
        if request.method == "OPTIONS":
            return web.Response(status=204, headers=_PREFLIGHT)
        response = await handler(request)
        response.headers.update(_CORS)
        etag = response.headers.get("ETag")
        if etag is None or response.status != 200 or request.method not in ("GET", "HEAD"):
            return response
        cache = {"ETag": etag, "Cache-Control": f"max-age={MAX_AGE_S}"}
        if matches(request.headers.get("If-None-Match"), etag):
            vary = {"Vary": response.headers["Vary"]} if "Vary" in response.headers else {}
            return web.Response(status=304, headers={**cache, **vary, **_CORS})
        response.headers.update(cache)
        return response

    return middleware
