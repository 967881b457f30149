"""Maintenance windows in the database: written by the `maintenance` command, read by every
replica (`monitor.parts.windows`), so that all of them drain the same hosts. Rows cross as
`monitor.core.maintenance.Window` values; times are stored in epoch milliseconds."""

from __future__ import annotations

from typing import Final

from sqlalchemy import Connection, Row, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from monitor.core.maintenance import Window
from monitor.store.core import Core, ms
from monitor.store.schema import MAINTENANCE_REASON_MAX as REASON_MAX
from monitor.store.schema import maintenance_windows

# At most this many are read back, the newest first: a fleet has a few windows at a time.
READ_LIMIT: Final = 1000

_t = maintenance_windows.c


async def add_window(
    core: Core, host: str | None, model: str | None, starts_at: float, ends_at: float, reason: str
) -> int:
    """Insert a window; returns its id (ValueError: it covers nothing, ends before it starts, or
    its reason is too long)."""
    if host is None and model is None:
        raise ValueError("a maintenance window needs a host or a model")
    if not ends_at > starts_at:
        raise ValueError("a maintenance window must end after it starts")
    if len(reason) > REASON_MAX:
        raise ValueError(f"the reason is longer than {REASON_MAX} characters")
    row = {"host": host, "model": model, "starts_at": ms(starts_at), "ends_at": ms(ends_at), "reason": reason}

    async def run(conn: AsyncConnection) -> int:
        result = await conn.execute(insert(maintenance_windows).values(row).returning(_t.id))
        return int(result.scalar_one())

    return await core.write("adding a maintenance window", run)


async def end_window(core: Core, window_id: int, at: float) -> Window | None:
    """End a window at `at` (a window already over is left as it is); returns it as it is now,
    None when there is no such window."""

    async def run(conn: AsyncConnection) -> Window | None:
        found = (await conn.execute(select(maintenance_windows).where(_t.id == window_id))).first()
        if found is None:
            return None
        window = _window(found)
        if window.until <= at:
            return window
        await conn.execute(update(maintenance_windows).where(_t.id == window_id).values(ended_at=ms(at)))
        return _window(found, ended_at=ms(at))

    return await core.write("ending a maintenance window", run)


async def load_windows(core: Core, since: float | None = None) -> list[Window]:
    """The windows (those still in force or to come at `since`, when given), by start time."""
    query = select(maintenance_windows).order_by(_t.starts_at.desc(), _t.id.desc()).limit(READ_LIMIT)
    if since is not None:
        cut = ms(since)
        query = query.where(_t.ends_at > cut, (_t.ended_at.is_(None)) | (_t.ended_at > cut))

    def read(conn: Connection) -> list[Window]:
        return [_window(row) for row in conn.execute(query)][::-1]

    return await core.read("reading maintenance windows", read)


def delete_windows_over_before(conn: Connection, cutoff_ms: int) -> int:
    """Delete the windows over (at their end, or ended early) before `cutoff_ms`; returns how many."""
    over = (_t.ends_at < cutoff_ms) | (_t.ended_at < cutoff_ms)
    return max(conn.execute(delete(maintenance_windows).where(over)).rowcount, 0)


def _window(row: Row[tuple[object, ...]], ended_at: int | None = None) -> Window:
    m = row._mapping
    ended = m["ended_at"] if ended_at is None else ended_at
    return Window(
        id=m["id"],
        host=m["host"],
        model=m["model"],
        starts_at=m["starts_at"] / 1000,
        ends_at=m["ends_at"] / 1000,
        reason=m["reason"],
        ended_at=None if ended is None else ended / 1000,
    )
