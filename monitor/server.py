"""Start and stop the whole service (store, monitor, HTTP) in the right order, for the CLI and tests."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from aiohttp import web

from monitor.config import FIELDS, Settings, listen_text, listen_url
from monitor.logging import get_logger
from monitor.service import Monitor
from monitor.store import Store, StoreError
from monitor.store.engine import database_url, sqlite_file_problem, sqlite_path
from monitor.store.migrate import schema_revision
from monitor.web.api import make_app

log = get_logger("monitor.server")

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


@dataclass(frozen=True, slots=True)
class Upgrade:
    """The schema revision before and after `open_store` applied the pending migrations."""

    before: str | None  # None: the database had no schema
    after: str | None

    @property
    def applied(self) -> bool:
        return self.before != self.after

    def describe(self, url: str) -> str:
        if not self.applied:
            return f"database {safe_url(url)} is already at the latest schema (revision {self.after})"
        return f"database {safe_url(url)} upgraded from {self.before or 'no schema'} to revision {self.after}"


_DEFAULT_DATABASE_URL = next(f.default for f in FIELDS if f.name == "database_url")


def check_database(settings: Settings) -> None:
    """What can be told about the database before opening it: the URL's driver is installed, a
    SQLite file can be made or opened (its directory exists: only the default location's is made)."""
    url = settings.database_url
    try:
        database_url(url)
    except StoreError as exc:
        raise StartupError(f"database {safe_url(url)}: {exc}") from None
    path = sqlite_path(url)
    if path is None:
        return
    problem = sqlite_file_problem(path, create_parent=url == _DEFAULT_DATABASE_URL)
    if problem is not None:
        raise StartupError(f"database {safe_url(url)}: cannot open {path}: {problem}")


def check_listen(host: str, port: int) -> None:
    """Bind the listen address once and let it go, so that a taken port or an address of no
    interface stops the start before the database is touched."""
    where = f"cannot listen on {listen_text(host, port)}"
    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError) as exc:
        raise StartupError(f"{where}: {getattr(exc, 'strerror', None) or exc}") from None
    for family, kind, proto, _, address in infos:
        with socket.socket(family, kind, proto) as sock:
            # As the server's own socket will be: a connection of a previous run in TIME_WAIT is
            # no reason to refuse, a listening socket is.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                sock.bind(address)
            except OSError as exc:
                raise StartupError(f"{where}: {exc.strerror or exc}") from None


async def open_store(settings: Settings) -> tuple[Store, Upgrade]:
    """Open the database and apply pending migrations."""
    check_database(settings)
    where = f"database {safe_url(settings.database_url)}"
    try:
        store = await Store.open(settings.database_url, vantage=settings.vantage)
    except Exception as exc:
        raise StartupError(f"{where}: {_short(exc)}") from None
    try:
        before = await schema_revision(store.engine)
        await store.upgrade()
        after = await schema_revision(store.engine)
    except Exception as exc:
        await store.close()
        raise StartupError(f"{where}: {_short(exc)}") from None
    return store, Upgrade(before, after)


def service_app(monitor: Monitor) -> web.Application:
    """The service's HTTP application: the API, and the status page unless it is turned off."""
    s = monitor.settings
    return make_app(monitor, monitor if s.status_page else None, s.status_title, s.metrics_max_hosts)


@asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[Running]:
    check_database(settings)
    check_listen(*settings.listen)
    store, upgrade = await open_store(settings)
    if upgrade.applied:
        log.info("database schema upgraded", before=upgrade.before, after=upgrade.after)
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
        raise StartupError(f"cannot listen on {listen_text(host, port)}: {exc.strerror or exc}") from None
    bound_port = runner.addresses[0][1] if runner.addresses else port
    try:
        await monitor.run()
        yield Running(monitor, listen_url(host, bound_port))
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
