"""Engine creation for the two supported databases.

SQLite (`sqlite+aiosqlite://`): pragmas on every connection and `BEGIN IMMEDIATE` for writes.
PostgreSQL (`postgresql+asyncpg://`, extra `postgres`): a pool whose connections are checked before
use (`pool_pre_ping`), so a restarted server or a dropped connection costs no failed write.
`sqlite://` and `postgresql://` (or `postgres://`) get the async driver without being told.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import os
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from monitor.store.errors import MissingDriverError, UnsupportedDatabaseError

# Execution option that makes the SQLite `begin` hook emit BEGIN IMMEDIATE: the write lock is taken
# up front, so a transaction never fails with "database is locked" half-way (busy_timeout applies).
WRITE_OPTION = "monitor_store_write"

DEFAULT_BUSY_TIMEOUT_MS = 5000

# backend -> (async driver, its module, the package extra that installs it)
_DRIVERS = {
    "sqlite": ("aiosqlite", "aiosqlite", None),
    "postgresql": ("asyncpg", "asyncpg", "postgres"),
}


def database_url(url: str | URL) -> URL:
    """The URL with the supported async driver; raises UnsupportedDatabaseError for any other
    database or driver, MissingDriverError (naming the extra to install) when the driver is absent."""
    try:
        u = make_url(url)
    except ArgumentError:
        raise UnsupportedDatabaseError(
            "the database URL cannot be parsed (expected sqlite+aiosqlite:///PATH or "
            "postgresql+asyncpg://USER:PASSWORD@HOST/DATABASE)"
        ) from None
    backend = "postgresql" if u.get_backend_name() in {"postgresql", "postgres"} else u.get_backend_name()
    if backend not in _DRIVERS:
        raise UnsupportedDatabaseError(
            f"unsupported database {u.get_backend_name()!r}: use sqlite+aiosqlite:// or postgresql+asyncpg://"
        )
    driver, module, extra = _DRIVERS[backend]
    if "+" in u.drivername and u.get_driver_name() != driver:
        raise UnsupportedDatabaseError(
            f"unsupported driver {u.drivername!r}: use {backend}+{driver}:// (the store is asynchronous)"
        )
    u = u.set(drivername=f"{backend}+{driver}")
    try:
        importlib.import_module(module)
    except ImportError:
        hint = f": pip install 'libertai-monitor[{extra}]'" if extra else ""
        raise MissingDriverError(f"the {backend} driver {driver} is not installed{hint}") from None
    return u


def sqlite_path(url: str | URL) -> Path | None:
    """The file of a SQLite URL, or None for memory databases and URI forms."""
    u = make_url(url)
    db = u.database
    if u.get_backend_name() != "sqlite" or not db or db == ":memory:" or db.startswith("file:"):
        return None
    return Path(db)


def sqlite_file_problem(path: Path, *, create_parent: bool = False) -> str | None:
    """Why SQLite cannot open or create the database file `path`, or None when nothing is in the
    way. A missing directory is created only when `create_parent` says so: a mistyped path must
    fail here rather than leave a database where nobody looks for it."""
    if path.is_dir():
        return f"{path} is a directory"
    parent = path.parent
    if not parent.exists():
        existing = next((p for p in parent.parents if p.exists()), None)
        if existing is not None and not existing.is_dir():
            return f"{existing} is not a directory"
        if not create_parent:
            return f"the directory {parent} does not exist (create it first)"
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            return f"cannot create the directory {parent}: {exc.strerror or exc}"
    if not parent.is_dir():
        return f"{parent} is not a directory"
    if path.exists() and not os.access(path, os.R_OK | os.W_OK):
        return f"{path}: permission denied (it must be readable and writable)"
    # SQLite makes the file, and in WAL mode its -wal and -shm files, beside it.
    if not os.access(parent, os.W_OK | os.X_OK):
        return f"{parent}: permission denied (the database's directory must be writable)"
    return None


def create_engine(url: str | URL, *, busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS) -> AsyncEngine:
    """An async engine; on SQLite every connection gets WAL, synchronous=NORMAL, busy_timeout and
    foreign_keys=ON, and SQLAlchemy (not the driver) emits BEGIN."""
    u = database_url(url)
    if u.get_backend_name() != "sqlite":
        return create_async_engine(u, pool_pre_ping=True)

    engine = create_async_engine(u)

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # The driver must not emit its own BEGIN: the "begin" hook below does.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = NORMAL")
            cursor.execute("PRAGMA foreign_keys = ON")
        finally:
            cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get(WRITE_OPTION, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


# SQLite has one writer at a time. Without this lock the process's own writers (the result writer,
# membership records, best hosts, discovery runs) took the lock from each other in BEGIN IMMEDIATE,
# each waiting in its driver thread up to busy_timeout: on a busy event loop a transaction spans
# many turns of it, and the others failed with "database is locked".
# Queued here instead, they wait on the loop, without a deadline; busy_timeout is left for other
# processes (a `probe-once` beside the service, say).
_SQLITE_WRITERS: weakref.WeakKeyDictionary[Engine, asyncio.Lock] = weakref.WeakKeyDictionary()


def _one_writer(engine: AsyncEngine) -> asyncio.Lock | None:
    if engine.dialect.name != "sqlite":
        return None  # PostgreSQL takes row locks: concurrent writers are fine
    lock = _SQLITE_WRITERS.get(engine.sync_engine)
    if lock is None:  # not setdefault: that would make a Lock on every write only to drop it
        lock = _SQLITE_WRITERS[engine.sync_engine] = asyncio.Lock()
    return lock


@asynccontextmanager
async def write_transaction(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A short write transaction (BEGIN IMMEDIATE on SQLite, one at a time in this process),
    committed on success."""
    lock = _one_writer(engine)
    async with lock if lock is not None else contextlib.nullcontext(), engine.connect() as conn:
        await conn.execution_options(**{WRITE_OPTION: True})
        async with conn.begin():
            yield conn


@asynccontextmanager
async def read_transaction(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A read transaction: one consistent snapshot for several queries."""
    async with engine.connect() as conn, conn.begin():
        yield conn
