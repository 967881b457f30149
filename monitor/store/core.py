"""What every part of the store shares: the engine, the name-id caches, the health bookkeeping,
and the one way reads and short writes fail (`StoreError`, with the reason in its message)."""

from __future__ import annotations

import math
import re
from collections.abc import Awaitable, Callable, Iterable
from typing import Final, TypeVar

from sqlalchemy import Table, exc, select
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from monitor.logging import get_logger
from monitor.store import bulk, queries
from monitor.store.aggregate import round_ms
from monitor.store.engine import read_transaction, write_transaction
from monitor.store.errors import StoreError
from monitor.store.schema import DEFAULT_VANTAGE, VANTAGE_MAX, hosts, models

__all__ = ["Core", "StoreError", "describe", "ms", "rejects_rows"]

log = get_logger("monitor.store")

T = TypeVar("T")

_NAME_CHUNK: Final = 500

# The database refused the rows themselves: a retry of the same rows cannot work.
_REJECTED_ROWS: Final = (exc.IntegrityError, exc.DataError)
# The database or the connection to it failed, whatever other error it was raised while handling:
# the rows wait for it.
_DATABASE_FAILED: Final = (
    exc.OperationalError,
    exc.InterfaceError,
    exc.InternalError,
    exc.DisconnectionError,
    exc.TimeoutError,
    OSError,
)


def _chain(error: BaseException) -> list[BaseException]:
    """The error, the driver's error it wraps, and their causes."""
    seen: list[BaseException] = []
    todo: list[BaseException | None] = [error]
    while todo:
        e = todo.pop(0)
        if e is None or any(e is s for s in seen):
            continue
        seen.append(e)
        todo += [getattr(e, "orig", None), e.__cause__, e.__context__]
    return seen


def _bad_value(error: BaseException) -> ValueError | TypeError | None:
    """The error that says a row's value cannot be sent to the database (not the database's
    fault, so never worth a retry), if any in the chain."""
    for e in _chain(error):
        # aiosqlite says a closed connection with a ValueError: the database failed, not a value.
        if isinstance(e, (ValueError, TypeError)) and "connection" not in str(e).lower():
            return e
    return None


def describe(error: BaseException) -> str:
    """A short description of a failure, without SQL parameters or row contents."""
    bad = _bad_value(error)
    if isinstance(bad, (UnicodeEncodeError, UnicodeDecodeError)):
        # The driver's message quotes the offending value: name the problem only.
        return f"{type(bad).__name__}: a value cannot be encoded ({bad.reason})"[:300]
    if isinstance(error, exc.DBAPIError) and error.orig is not None:
        text = f"{type(error.orig).__name__}: {error.orig}"
    elif isinstance(error, exc.SQLAlchemyError):
        text = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
    elif isinstance(error, OSError):
        text = f"{type(error).__name__}: {error.strerror or error}"
    elif str(error):
        text = f"{type(error).__name__}: {error}"
    else:
        text = type(error).__name__
    return text.splitlines()[0][:300]


def rejects_rows(error: BaseException) -> bool:
    """True when the database refused the rows themselves (a constraint, a value it cannot take).
    Anything else is a failure of the database or of the connection to it (locked, read-only,
    full, gone, or not known): retrying the same rows is right, and dropping them would lose
    results for a fault that clears."""
    if isinstance(error, _DATABASE_FAILED):
        return False
    if isinstance(error, exc.DBAPIError) and error.connection_invalidated:
        return False
    return isinstance(error, _REJECTED_ROWS) or _bad_value(error) is not None


def says_read_only(error: BaseException) -> bool:
    """True for a failure caused by a database (file or server) that refuses writes."""
    text = describe(error).lower()
    return "readonly" in text or "read-only" in text or "read only" in text


def ms(t: float) -> int:
    return round(t * 1000)


def finite_or_none(value: float | None) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return round_ms(value)


VANTAGE_RE: Final = re.compile(rf"[A-Za-z0-9][A-Za-z0-9._-]{{0,{VANTAGE_MAX - 1}}}")


def check_vantage(name: str) -> str:
    """`name` if it can name a vantage (1-64 letters, digits, '.', '_', '-'), else ValueError."""
    if not isinstance(name, str) or VANTAGE_RE.fullmatch(name) is None:
        raise ValueError(
            f"invalid vantage name {name!r}: use 1-{VANTAGE_MAX} letters, digits, '.', '_' or '-'"
        )
    return name


class Core:
    """The engine plus what the writer, the short writes and the reads share. Every write is
    tagged with `vantage`; reads are of `vantage` unless told another."""

    def __init__(self, engine: AsyncEngine, vantage: str = DEFAULT_VANTAGE) -> None:
        self.engine = engine
        self.vantage = check_vantage(vantage)
        self.dialect = engine.dialect.name
        self.model_ids: dict[str, int] = {}
        self.host_ids: dict[str, int] = {}
        self.write_errors = 0
        self.last_error: str | None = None
        # Health follows the batches of probe results (the bulk of the writes): a short write that
        # works while batches fail (a disk with a little room left) does not make it healthy.
        self.batches_failing = False
        self.short_writes_failing = False

    @property
    def healthy(self) -> bool:
        return not (self.batches_failing or self.short_writes_failing)

    # -- name ids ---------------------------------------------------------------------------

    async def ensure_ids(
        self, conn: AsyncConnection, model_names: Iterable[str], host_urls: Iterable[str]
    ) -> tuple[dict[str, int], dict[str, int]]:
        """Ids of names not cached yet, creating rows as needed, in the caller's transaction.
        The caller merges them into the caches (`commit_ids`) once the transaction committed."""
        new_models = await self._ensure(conn, models, "name", model_names, self.model_ids)
        new_hosts = await self._ensure(conn, hosts, "url", host_urls, self.host_ids)
        return new_models, new_hosts

    async def _ensure(
        self, conn: AsyncConnection, table: Table, column: str, names: Iterable[str], cache: dict[str, int]
    ) -> dict[str, int]:
        missing = sorted({n for n in names if n not in cache})
        found: dict[str, int] = {}
        if not missing:
            return found
        if self.dialect == "sqlite":  # one step each, whatever the number (see monitor.store.bulk)
            names = bulk.json_rows(missing)
            await conn.execute(bulk.names_insert(table, column), {"names": names})
            rows = await conn.execute(bulk.names_select(table, column), {"names": names})
            return {name: int(id_) for id_, name in rows}
        col = table.c[column]
        for i in range(0, len(missing), _NAME_CHUNK):
            chunk = missing[i : i + _NAME_CHUNK]
            await conn.execute(queries.insert_ignore(self.dialect, table), [{column: n} for n in chunk])
            rows = await conn.execute(select(table.c.id, col).where(col.in_(chunk)))
            found.update({name: int(id_) for id_, name in rows})
        return found

    def vantage_of(self, vantage: str | None) -> str:
        """The vantage a read is of: the given one (checked), else this store's own."""
        return self.vantage if vantage is None else check_vantage(vantage)

    def commit_ids(self, new: tuple[dict[str, int], dict[str, int]]) -> None:
        self.model_ids.update(new[0])
        self.host_ids.update(new[1])

    # -- failures and health ----------------------------------------------------------------

    async def recover_from(self, error: BaseException) -> None:
        """After a failure that says the database is read-only, drop every pooled connection:
        one opened while the database was read-only stays so after the database is writable
        again, and would keep every later write failing."""
        if says_read_only(error):
            log.info("discarding pooled database connections after a read-only failure")
            try:
                await self.engine.dispose()
            except Exception as failure:  # closing a broken connection may fail too: never fatal
                log.warning("discarding pooled connections failed", error=describe(failure))

    def record_failure(self, error: BaseException, *, batch: bool) -> None:
        self.write_errors += 1
        self.last_error = describe(error)
        if batch:
            self.batches_failing = True
        else:
            self.short_writes_failing = True

    def record_success(self, *, batch: bool) -> None:
        was_healthy = self.healthy
        if batch:
            self.batches_failing = False
        else:
            self.short_writes_failing = False
        if not was_healthy and self.healthy:
            log.info("database writes work again")

    async def write(self, what: str, fn: Callable[[AsyncConnection], Awaitable[T]]) -> T:
        """Run a short write transaction; a failure is counted, logged and raised as StoreError."""
        try:
            async with write_transaction(self.engine) as conn:
                value = await fn(conn)
        except Exception as error:
            self.record_failure(error, batch=False)
            log.warning("database operation failed", operation=what, error=describe(error))
            await self.recover_from(error)
            raise StoreError(f"{what} failed: {describe(error)}") from error
        self.record_success(batch=False)
        return value

    async def read(self, what: str, fn: Callable[[Connection], T]) -> T:
        try:
            async with read_transaction(self.engine) as conn:
                return await conn.run_sync(fn)
        except Exception as error:
            log.warning("database operation failed", operation=what, error=describe(error))
            raise StoreError(f"{what} failed: {describe(error)}") from error
