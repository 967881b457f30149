"""aiohttp routes. Every answer but history comes from the current snapshot: no database on a request."""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry

from monitor.core.answer import HOSTS, MODELS, Answer, AnswerKey, Sort
from monitor.core.host_view import iso
from monitor.core.snapshot import Snapshot
from monitor.logging import get_logger
from monitor.slices import SLICE_S, Slices, run_in_slices
from monitor.store import StoreError
from monitor.web.httpcache import cache_headers
from monitor.web.metrics import make_registry, negotiate, next_chunk, render
from monitor.web.readout import Readout, VantageSource
from monitor.web.slo import add_slo_route, budget_lines
from monitor.web.status.routes import MODEL_PATTERN, StatusSource, add_status_routes

log = get_logger("monitor.web.api")

READOUT_KEY = web.AppKey("readout", Readout)
REGISTRY_KEY = web.AppKey("registry", CollectorRegistry)
MAX_HOSTS_KEY: web.AppKey[int | None] = web.AppKey("metrics_max_hosts")
BUILDS_KEY: web.AppKey[_Builds] = web.AppKey("answer_builds")
_JSON = "application/json"
_MAX_HISTORY_POINTS = 5000


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(
        body=json.dumps(data, separators=(",", ":")).encode(), status=status, content_type=_JSON
    )


def _error(status: int, detail: str) -> web.Response:
    return _json({"detail": detail}, status)


def _accepts_gzip(request: web.Request) -> bool:
    header = request.headers.get("Accept-Encoding", "")
    if "gzip" not in header and "*" not in header:
        return False
    for part in header.split(","):
        coding, _, params = part.partition(";")
        if coding.strip().lower() in ("gzip", "*"):
            q = params.strip()
            try:
                return not q.startswith("q=") or float(q[2:]) > 0
            except ValueError:
                return False
    return False


# Built once: these answers are the hot path, and aiohttp parses a `content_type=` argument per call.
_PLAIN = {"Content-Type": _JSON, "Vary": "Accept-Encoding"}
_GZIPPED = {**_PLAIN, "Content-Encoding": "gzip"}


class _Refused(Exception):
    def __init__(self, response: web.Response) -> None:
        self.response = response


async def _snapshot_of(request: web.Request) -> Snapshot:
    """The snapshot a request asks for: this vantage's, or `?vantage=NAME`'s (another vantage's
    answers, built from its stored results). Raises `_Refused` with the error answer."""
    readout = request.app[READOUT_KEY]
    snap = readout.snapshot
    vantage = request.query.get("vantage") if request.query_string else None
    if vantage is None or vantage == snap.vantage:
        return snap
    if not isinstance(readout, VantageSource):
        raise _Refused(_error(404, f"Unknown vantage {vantage}"))
    try:
        return await readout.vantage_snapshot(vantage)
    except ValueError as exc:
        raise _Refused(_error(422, str(exc))) from None
    except LookupError:
        raise _Refused(_error(404, f"Unknown vantage {vantage}")) from None
    except StoreError as exc:
        log.warning("vantage read failed", vantage=vantage, error=str(exc))
        raise _Refused(_error(503, str(exc))) from None


async def _snapshot_answer(request: web.Request, key: AnswerKey) -> web.Response | None:
    """A whole-snapshot answer with its ETag, gzipped when the client accepts it (Python's HTTP
    clients all do): built at most once per snapshot, on the loop in steps, then served from
    memory. None for an unknown model."""
    try:
        snap = await _snapshot_of(request)
    except _Refused as refused:
        return refused.response
    gzipped = _accepts_gzip(request)
    answer = snap.answered(key, gzipped)
    if answer is None:
        answer = await _built(request.app[BUILDS_KEY], snap, key, gzipped)
        if answer is None:
            return None
    headers = _GZIPPED if gzipped else _PLAIN
    return web.Response(body=answer.body, headers={**headers, "ETag": answer.etag})


_Builds = dict[tuple[int, AnswerKey, bool], "asyncio.Future[Answer | None]"]


async def _built(builds: _Builds, snap: Snapshot, key: AnswerKey, gzipped: bool) -> Answer | None:
    """The answer built once however many requests ask for it meanwhile (a large one is seconds
    of work), and never abandoned by a client that goes away."""
    build_key = (id(snap), key, gzipped)  # the build holds the snapshot: its id is not reused meanwhile
    build = builds.get(build_key)
    if build is None:
        build = asyncio.ensure_future(run_in_slices(snap.answer(key, gzipped)))
        builds[build_key] = build
        build.add_done_callback(lambda _done: builds.pop(build_key, None))
    return await asyncio.shield(build)


def _cached(key: AnswerKey) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handler(request: web.Request) -> web.Response:
        response = await _snapshot_answer(request, key)
        assert response is not None  # only an unknown model has no answer
        return response

    return handler


def _sort(request: web.Request) -> Sort | None:
    """`?sort=ttft|throughput`; None if it is neither."""
    try:
        return Sort(request.query.get("sort", Sort.TTFT))
    except ValueError:
        return None


async def best_all(request: web.Request) -> web.Response:
    sort = _sort(request)
    if sort is None:
        return _error(422, "sort must be ttft or throughput")
    response = await _snapshot_answer(request, AnswerKey.best(sort=sort))
    assert response is not None
    return response


async def best_one(request: web.Request) -> web.Response:
    model = request.match_info["model"]
    sort = _sort(request)
    if sort is None:
        return _error(422, "sort must be ttft or throughput")
    response = await _snapshot_answer(request, AnswerKey.best(model, sort))
    return _error(404, f"Unknown model {model}") if response is None else response


# Rendering /metrics holds the loop this long at most before it lets the loop turn (not a turn
# per chunk: on a busy loop every turn is long).
METRICS_SLICE_S = SLICE_S


async def metrics(request: web.Request) -> web.StreamResponse:
    """The exposition, streamed a chunk at a time, each chunk rendered on the loop in a step of a
    few milliseconds, with a turn of the loop every `METRICS_SLICE_S`: at thousands of hosts the whole
    render takes long enough to stall probes (and their time-to-first-token readings) if it ran
    in one go, and a whole body at once (tens of MiB of text, plus its copies) would raise the
    process's peak memory for good. The renderer reads the snapshot (immutable) and copies of the counters."""
    exposition = negotiate(request.headers.get("Accept", ""))
    if request.method == "HEAD":
        return web.Response(headers={"Content-Type": exposition.content_type})
    app = request.app
    chunks = render(app[READOUT_KEY], exposition, app[REGISTRY_KEY], app[MAX_HOSTS_KEY])
    # The first chunk before the headers: a failure there is still an error answer, not a cut body.
    chunk = next_chunk(chunks)
    response = web.StreamResponse(headers={"Content-Type": exposition.content_type})
    response.enable_compression()  # gzip or deflate when accepted; aiohttp compresses off the loop
    await response.prepare(request)
    slices = Slices(METRICS_SLICE_S)
    try:
        while chunk is not None:
            if chunk:
                await response.write(chunk)
            await slices.turn()  # a write that needs no drain does not yield
            chunk = next_chunk(chunks)
        await response.write_eof()
    except ConnectionResetError:
        log.info("metrics scrape abandoned by the client")  # a scraper's timeout, not our error
    return response


async def healthz(request: web.Request) -> web.Response:
    return _json({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    readout = request.app[READOUT_KEY]
    r = readout.readiness()
    body: dict[str, Any] = {"status": "ready" if r.ready else "not ready", "checks": dict(r.checks)}
    served_by = readout.snapshot.served_by
    if served_by is not None:
        body["served_by"] = served_by.as_json()
    if not r.ready:
        body["detail"] = "; ".join(f"{k}: {v}" for k, v in r.checks.items() if v != "ok")
    return _json(body, 200 if r.ready else 503)


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
# Times a history answer can name: from the epoch to the end of year 9999 (what `iso` can write,
# and what the store's millisecond columns hold). Anything else is refused before it reaches them.
_EARLIEST = 0.0
_LATEST = 253402300799.0
_MAX_STEP_S = 3650 * 86400  # ten years: a bucket wider than any history kept
_TIME_HELP = "epoch seconds, ISO 8601 or a duration like 24h"


class BadQuery(ValueError):
    """A query value the answer cannot be built from; the message says which and why (422)."""


def _duration(raw: str) -> float | None:
    """`90`, `30m`, `24h`, `7d` as seconds; None when `raw` is not a duration."""
    number, unit = (raw[:-1], _UNITS[raw[-1]]) if raw and raw[-1] in _UNITS else (raw, 1)
    try:
        return float(number) * unit
    except ValueError:
        return None


def _parse_time(name: str, raw: str, now: float) -> float:
    """`since`/`until` as epoch seconds, an ISO 8601 time, or a duration back from now
    (`30m`, `24h`, `7d`), within the years 1970 to 9999."""
    value: float | None = None
    if raw and raw[-1] in _UNITS and (back := _duration(raw)) is not None:
        value = now - back
    else:
        try:
            value = float(raw)
        except ValueError:
            try:
                value = datetime.fromisoformat(raw.replace("Z", "+00:00")).timestamp()
            except (ValueError, OverflowError, OSError):
                value = None
    if value is None:
        raise BadQuery(f"{name} takes {_TIME_HELP}")
    if not math.isfinite(value) or not _EARLIEST <= value <= _LATEST:
        raise BadQuery(f"{name} must be a time between 1970 and 9999")
    return value


def _parse_step(raw: str) -> int:
    seconds = _duration(raw)
    if seconds is None or math.isnan(seconds):
        raise BadQuery("step takes seconds or a duration like 5m or 1h")
    if not 1 <= seconds <= _MAX_STEP_S:
        raise BadQuery(f"step must be between 1 s and {_MAX_STEP_S} s")
    return int(seconds)


def history_range(query: Mapping[str, str], now: float) -> tuple[float, float, int]:
    """(since, until, step) of a history query, or `BadQuery` saying what is wrong. Every value
    is finite and in range afterwards: the store and `iso` can take them as they are."""
    since = _parse_time("since", query.get("since", "24h"), now)
    until = _parse_time("until", query["until"], now) if "until" in query else now
    step = _parse_step(query.get("step", "1h"))
    if until <= since:
        raise BadQuery("since must be before until")
    if (until - since) / step > _MAX_HISTORY_POINTS:
        raise BadQuery(f"too many points: at most {_MAX_HISTORY_POINTS} per host; raise step")
    return since, until, step


_MAX_HOST_CHARS = 2048


def history_host(query: Mapping[str, str]) -> str | None:
    """The `host` filter: a URL as /v1/hosts writes it, so printable and not endless (a NUL
    byte, say, is refused here rather than by the database, which PostgreSQL does with an error)."""
    host = query.get("host") or None
    if host is not None and (len(host) > _MAX_HOST_CHARS or not host.isprintable()):
        raise BadQuery("host must be a host URL as /v1/hosts lists it")
    return host


async def history(request: web.Request) -> web.Response:
    monitor = request.app[READOUT_KEY]
    model = request.match_info["model"]
    view = monitor.snapshot.models.get(model)
    if view is None:
        return _error(404, f"Unknown model {model}")
    reader = monitor.history
    if reader is None:
        return _error(503, "History needs a database")
    q = request.query
    try:
        since, until, step = history_range(q, monitor.clock.time())
        host = history_host(q)
    except BadQuery as exc:
        return _error(422, str(exc))
    try:
        points = await reader.history(view.probed_as, host, since, until, step)
    except StoreError as exc:
        log.warning("history read failed", model=model, error=str(exc))
        return _error(503, str(exc))
    return _json(
        {
            "model": model,
            "host": host,
            "since": iso(since),
            "until": iso(until),
            "step_s": step,
            "points": [
                {
                    "at": iso(p.at),
                    "host": p.host,
                    "probes": p.probes,
                    "ok": p.ok,
                    "availability": None if p.availability is None else round(p.availability, 4),
                    "ttft_ms_p50": p.ttft_ms_p50,
                    "ttft_ms_p95": p.ttft_ms_p95,
                    "latency_ms_p50": p.latency_ms_p50,
                }
                for p in points
            ],
        }
    )


async def vantages(request: web.Request) -> web.Response:
    readout = request.app[READOUT_KEY]
    local = readout.snapshot.vantage
    if not isinstance(readout, VantageSource):
        listed = [] if local is None else [{"name": local, "last_result_at": None, "local": True}]
        return _json({"vantages": listed})
    try:
        infos = await readout.vantage_list()
    except StoreError as exc:
        log.warning("vantage list failed", error=str(exc))
        return _error(503, str(exc))
    return _json(
        {
            "vantages": [
                {"name": v.name, "last_result_at": iso(v.last_result_at), "local": v.name == local}
                for v in infos
            ]
        }
    )


@web.middleware
async def json_errors(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Errors as `{"detail": ...}`, like the gateway, never an HTML page or a traceback."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return _error(exc.status, exc.reason)
    except Exception as exc:  # a bug: logged with its reason and traceback, answered without them
        log.exception("request failed", path=request.path, error=f"{type(exc).__name__}: {exc}")
        return _error(500, "Internal error")


def make_app(
    monitor: Readout,
    status: StatusSource | None = None,
    status_title: str = "",
    metrics_max_hosts: int | None = None,
) -> web.Application:
    """The HTTP API; with a `status` source, the status page too. `metrics_max_hosts`: see
    `metrics.render` (None: every host's series)."""
    app = web.Application(middlewares=[cache_headers(), json_errors])
    app[READOUT_KEY] = monitor
    app[MAX_HOSTS_KEY] = metrics_max_hosts
    app[BUILDS_KEY] = {}
    registry = make_registry(monitor)
    app[REGISTRY_KEY] = registry
    app.router.add_get("/v1/best", best_all)
    # `{model:.+}`, not aiohttp's default `[^{}/]+`: a model id may hold any printable character
    # (`/`, `{`, `}`, `%`...; discovery refuses only what cannot be printed), and every id listed
    # must be reachable, whether a client sends `/` as is or as `%2F`.
    app.router.add_get(f"/v1/best/{MODEL_PATTERN}", best_one)
    app.router.add_get("/v1/hosts", _cached(HOSTS))
    app.router.add_get(f"/v1/history/{MODEL_PATTERN}", history)
    app.router.add_get("/v1/vantages", vantages)
    app.router.add_get("/libertai/models", _cached(MODELS))
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    add_slo_route(app, monitor)
    if status is not None:
        add_status_routes(app, status, status_title, budgets=lambda: budget_lines(monitor.counters))
    return app
