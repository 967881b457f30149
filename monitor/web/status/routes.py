"""The status page's routes on the service's aiohttp application, and its history loader.

Requests never touch the database: the history is read in the background every `HISTORY_EVERY_S`
and pages are rendered on the loop in steps, once per (snapshot, history, incidents, readiness).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from importlib import resources
from typing import Final, Protocol

from aiohttp import web

from monitor import __version__
from monitor.core.snapshot import Snapshot
from monitor.logging import get_logger
from monitor.parts.ports import EngineHolder
from monitor.slices import run_in_slices
from monitor.web.status.data import HistoryReader
from monitor.web.status.drawings import Drawings
from monitor.web.status.feed import FEED_PATH, RenderedFeed, base_url_of, build_feed, feed_response, rendered
from monitor.web.status.history import History
from monitor.web.status.incidents import IncidentLog
from monitor.web.status.render import (
    STATIC_FILES,
    STATIC_PREFIX,
    Cards,
    badge_for,
    compressed,
    render_missing,
    render_page,
)

log = get_logger("monitor.web.status")

HISTORY_EVERY_S: Final = 30.0
DEFAULT_REFRESH_S: Final = 15.0
# A shorter interval is raised to this: without JavaScript the browser reloads the whole page.
MIN_REFRESH_S: Final = 5.0
MAX_REFRESH_S: Final = 3600.0
_CACHE_SIZE: Final = 32
# A route's model id: anything to the end of the path (aiohttp's default stops at `/`, `{`, `}`,
# and a listed model id may hold any of them).
MODEL_PATTERN: Final = "{model:.+}"

_SECURITY = {
    # Defence in depth behind the escaping: no inline script can run even if some text slipped through.
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
_TYPES = {"css": "text/css; charset=utf-8", "js": "text/javascript; charset=utf-8"}


class Readiness(Protocol):
    @property
    def checks(self) -> Mapping[str, str]: ...


class StatusSource(Protocol):
    """What the page reads of the running monitor."""

    @property
    def snapshot(self) -> Snapshot: ...

    @property
    def store(self) -> EngineHolder | None: ...

    @property
    def incidents(self) -> IncidentLog: ...

    def readiness(self) -> Readiness: ...


@dataclass
class StatusState:
    source: StatusSource
    title: str
    history: History = field(default_factory=History)
    history_every_s: float = HISTORY_EVERY_S
    drawings: Drawings = field(default_factory=Drawings)
    cards: Cards = field(default_factory=Cards)
    started_at: float = field(default_factory=time.time)  # the empty feed's `updated`
    budgets: Callable[[], Mapping[str, str]] = dict  # model -> "error budget left: 73%"
    _pages: dict[tuple[object, ...], asyncio.Future[tuple[bytes, bytes]]] = field(default_factory=dict)
    _feed: tuple[tuple[object, ...], RenderedFeed] | None = None

    async def page(self, model: str | None, refresh: float) -> tuple[bytes, bytes] | None:
        """(plain, gzipped) HTML, rendered once per state of its inputs, on the loop in steps
        however many requests ask for it meanwhile; None for a model the current snapshot does
        not know."""
        src = self.source
        snap = src.snapshot  # one snapshot for the whole page, whatever is published meanwhile
        if model is not None and model not in snap.models:
            return None
        readiness = dict(src.readiness().checks)
        inc = src.incidents
        budgets = self.budgets()
        key = (
            tuple(sorted(budgets.items())),
            id(snap),
            snap.generated_at,
            self.history.version,
            inc.version,
            tuple(readiness.items()),
            model,
            refresh,
        )
        cached = self._pages.get(key)
        if cached is None:
            incidents = inc.recent(snap.generated_at)
            steps = render_page(
                self.title,
                snap,
                self.history,
                readiness,
                incidents,
                refresh,
                model,
                self.drawings,
                self.cards,
                budgets,
            )
            cached = asyncio.ensure_future(run_in_slices(steps))
            if len(self._pages) >= _CACHE_SIZE:
                self._pages.pop(next(iter(self._pages)))
            self._pages[key] = cached
        try:
            return await asyncio.shield(cached)
        except Exception:
            self._pages.pop(key, None)
            raise

    def feed(self, base_url: str) -> RenderedFeed:
        """The Atom feed of the incidents the overview lists, rendered again when they change."""
        snap, inc = self.source.snapshot, self.source.incidents
        key = (id(snap), snap.generated_at, inc.version, base_url)
        if self._feed is None or self._feed[0] != key:
            incidents = inc.recent(snap.generated_at)
            body = build_feed(self.title, base_url, incidents, self.started_at, snap.gateway_rejects_key)
            self._feed = (key, rendered(body))
        return self._feed[1]


STATUS_KEY: Final = web.AppKey("status", StatusState)


def _accepts_gzip(request: web.Request) -> bool:
    return "gzip" in request.headers.get("Accept-Encoding", "").lower()


def refresh_of(text: str | None) -> float:
    """`?refresh=SECONDS`: the page's refresh interval, 5 to 3600 s (the default 15 s); `0` turns
    refreshing off (no reload, no timer). Unreadable values get the default."""
    if text is None:
        return DEFAULT_REFRESH_S
    try:
        value = float(text)
    except ValueError:
        return DEFAULT_REFRESH_S
    if value != value or value < 0:
        return DEFAULT_REFRESH_S
    if value == 0:
        return 0.0
    return min(max(value, MIN_REFRESH_S), MAX_REFRESH_S)


def _refresh(request: web.Request) -> float:
    return refresh_of(request.query.get("refresh"))


def _html(request: web.Request, plain: bytes, gz: bytes, status: int = 200) -> web.Response:
    headers = {
        "Content-Type": "text/html; charset=utf-8",
        "Cache-Control": "no-cache",
        "Vary": "Accept-Encoding",
    }
    headers.update(_SECURITY)
    if _accepts_gzip(request):
        headers["Content-Encoding"] = "gzip"
        return web.Response(body=gz, status=status, headers=headers)
    return web.Response(body=plain, status=status, headers=headers)


async def overview(request: web.Request) -> web.Response:
    state = request.app[STATUS_KEY]
    page = await state.page(None, _refresh(request))
    assert page is not None  # the overview always exists
    return _html(request, *page)


async def model_page(request: web.Request) -> web.Response:
    state = request.app[STATUS_KEY]
    model = request.match_info["model"]
    page = await state.page(model, _refresh(request))
    if page is None:
        snap, checks = state.source.snapshot, dict(state.source.readiness().checks)
        body = render_missing(state.title, snap, checks, model, _refresh(request))
        return _html(request, body, compressed(body), 404)
    return _html(request, *page)


async def atom_feed(request: web.Request) -> web.Response:
    state = request.app[STATUS_KEY]
    return feed_response(request, state.feed(base_url_of(request)))


async def badge(request: web.Request) -> web.Response:
    state = request.app[STATUS_KEY]
    text, status = badge_for(state.source.snapshot, state.history, request.match_info["model"])
    return web.Response(
        text=text,
        status=status,
        headers={"Cache-Control": "max-age=60", **_SECURITY},
        content_type="image/svg+xml",
        charset="utf-8",
    )


def _static_handler(files: Mapping[str, bytes]) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handler(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        body = files.get(name)
        if body is None:
            raise web.HTTPNotFound()
        headers = {"Content-Type": _TYPES[name.rsplit(".", 1)[1]], "Cache-Control": "public, max-age=86400"}
        return web.Response(body=body, headers={**headers, "X-Content-Type-Options": "nosniff"})

    return handler


async def load_history_forever(state: StatusState) -> None:
    """Re-read the history every `history_every_s`; a failure keeps the last good one, noted."""
    store = state.source.store
    if store is None:
        if state.history.loaded_at is None:
            state.history = replace(state.history, error="the service runs without a database")
        return
    reader = HistoryReader(store.engine)
    while True:
        try:
            state.history = await reader.read(time.time())
        except Exception as exc:
            if state.history.error is None:
                log.warning("could not read the status page's history", error=type(exc).__name__)
            state.history = replace(
                state.history, error=f"reading the database failed ({type(exc).__name__})"
            )
        await asyncio.sleep(state.history_every_s)


def add_status_routes(
    app: web.Application,
    source: StatusSource,
    title: str,
    history_every_s: float = HISTORY_EVERY_S,
    budgets: Callable[[], Mapping[str, str]] = dict,
) -> StatusState:
    """GET /, /status, /status/feed.atom, /status/{model}, /badge/{model}.svg and the page's
    static files. `budgets`: each model's error budget line (see `monitor.web.slo`)."""
    state = StatusState(source, title, history_every_s=history_every_s, budgets=budgets)
    app[STATUS_KEY] = state
    pkg = resources.files("monitor.web.status") / "static"
    files = {name: (pkg / name).read_bytes() for name in STATIC_FILES}
    app.router.add_get("/", overview)
    app.router.add_get("/status", overview)
    app.router.add_get(FEED_PATH, atom_feed)  # before the model pages, whose pattern matches it too
    app.router.add_get(f"/status/{MODEL_PATTERN}", model_page)
    app.router.add_get(f"/badge/{MODEL_PATTERN}.svg", badge)
    app.router.add_get(STATIC_PREFIX + "/" + __version__ + "/{name}", _static_handler(files))

    async def loader(_app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(load_history_forever(state), name="status-history")
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    app.cleanup_ctx.append(loader)
    return state
