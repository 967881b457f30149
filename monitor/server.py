"""Start and stop the whole service (store, monitor, HTTP) in the right order, for the CLI and tests."""

from __future__ import annotations

import asyncio
import gc
import resource
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from aiohttp import web

from monitor.api import make_app
from monitor.config import Settings
from monitor.gcpace import pace_gc
from monitor.service import Monitor
from monitor.store import Store


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
        store = await Store.open(settings.database_url)
    except Exception as exc:
        raise StartupError(f"database {safe_url(settings.database_url)}: {_short(exc)}") from None
    try:
        await store.upgrade()
    except Exception as exc:
        await store.close()
        raise StartupError(f"database {safe_url(settings.database_url)}: {_short(exc)}") from None
    return store


def tune_process() -> None:
    """Process settings for a long-running prober of thousands of hosts.

    Open files: one kept-alive connection per host needs more descriptors than the usual soft
    limit of 1,024. Garbage collection: the start-up objects (modules, restored windows) are moved
    out of the collector's way (measured at 5,000 hosts, full collections of ~200 ms every few
    seconds were the largest stalls of the event loop, and so of time-to-first-token readings,
    before this); from then on `pace_gc` collects on the clock.
    """
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if hard == resource.RLIM_INFINITY or soft < hard:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ValueError, OSError):
        pass  # not allowed here: the soft limit stays
    gc.collect()
    gc.freeze()


@asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[Running]:
    store = await open_store(settings)
    store.start_writer()
    monitor = Monitor(settings, store)
    await monitor.prepare()  # restored answers are ready before the port opens
    tune_process()
    runner = web.AppRunner(make_app(monitor), access_log=None, handle_signals=False)
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
    pacer = asyncio.create_task(pace_gc(), name="gc-pacer")
    try:
        await monitor.run()
        yield Running(monitor, f"http://{shown}:{bound_port}")
    finally:
        pacer.cancel()
        await asyncio.gather(pacer, return_exceptions=True)
        await monitor.stop()
        await runner.cleanup()
        await store.close()
