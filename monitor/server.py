"""Start and stop the whole service (store, monitor, HTTP) in the right order, for the CLI and tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from aiohttp import web

from monitor.config import Settings
from monitor.service import Monitor
from monitor.store import Store
from monitor.web.api import make_app

# How long a stop waits for a request in progress. aiohttp waits this twice (for the handler, then
# for its cancellation), so a client that never reads its answers holds a stop for twice this.
SHUTDOWN_GRACE_S = 1.0
STORE_FLUSH_GRACE_S = 5.0


class StartupError(Exception):
    """The service cannot start (port taken, database unusable). One line, secret-free."""


@dataclass(frozen=True, slots=True)
class Running:
    monitor: Monitor
    url: str  # where the HTTP API listens, with the real port when 0 was asked for


def safe_url(url: str) -> str:
    """A database URL without its password, for messages."""
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.rpartition('@')[2]}"


def _short(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:200]


async def open_store(settings: Settings) -> Store:
    """Open the database and apply pending migrations."""
    try:
        store = await Store.open(settings.database_url, vantage=settings.vantage)
    except Exception as exc:
        raise StartupError(f"database {safe_url(settings.database_url)}: {_short(exc)}") from None
    try:
        await store.upgrade()
    except Exception as exc:
        await store.close()
        raise StartupError(f"database {safe_url(settings.database_url)}: {_short(exc)}") from None
    return store


def service_app(monitor: Monitor) -> web.Application:
    """The service's HTTP application: the API, and the status page unless it is turned off."""
    s = monitor.settings
    return make_app(monitor, monitor if s.status_page else None, s.status_title, s.metrics_max_hosts)


@asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[Running]:
    store = await open_store(settings)
    store.start_writer()
    monitor = Monitor(settings, store)
    await monitor.prepare()  # restored answers are ready before the port opens
    runner = web.AppRunner(
        service_app(monitor), access_log=None, handle_signals=False, shutdown_timeout=SHUTDOWN_GRACE_S
    )
    await runner.setup()
    host, port = settings.listen
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError as exc:
        await monitor.stop()
        await runner.cleanup()
        await store.close()
        raise StartupError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    bound_port = runner.addresses[0][1] if runner.addresses else port
    shown = "127.0.0.1" if host in {"0.0.0.0", ""} else host
    try:
        await monitor.run()
        yield Running(monitor, f"http://{shown}:{bound_port}")
    finally:
        # No new connections, then the results queued so far are written, and only then are the
        # open connections given their short grace: a client that holds one without reading
        # cannot delay the flush (nor, past twice SHUTDOWN_GRACE_S, the stop).
        for site in list(runner.sites):
            await site.stop()
        await monitor.stop()  # at most about 3 s (see Monitor.stop)
        # A healthy database takes the queue in well under a second; a failing one is given 5 s,
        # so that the whole stop stays inside Docker's 10 s grace.
        await store.close(grace_s=STORE_FLUSH_GRACE_S)
        await runner.cleanup()
