"""Notifications in the database: the leader records each message pending before it sends it and
marks it sent or dropped after, so that a new leader sends what was pending (`load_pending`) and
never what a predecessor recorded (`claim` is False for an event already there)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from sqlalchemy import Connection, delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from monitor.store.core import Core, ms
from monitor.store.errors import StoreError
from monitor.store.schema import NOTIFICATION_BODY_MAX, NOTIFICATION_TITLE_MAX, notifications

READ_LIMIT: Final = 1000  # pending messages read back at once
_t = notifications.c


@dataclass(frozen=True, slots=True)
class StoredMessage:
    event: str
    channel: str
    title: str
    body: str
    attempts: int


async def claim(core: Core, message: StoredMessage, at: float) -> bool:
    """Record `message` pending; False when its event was recorded already (by this leader or one
    before it), which then must not send it again."""
    row = {
        "event": message.event,
        "channel": message.channel,
        "state": "pending",
        "attempts": 0,
        "title": message.title[:NOTIFICATION_TITLE_MAX],
        "body": message.body[:NOTIFICATION_BODY_MAX],
        "created_at": ms(at),
        "updated_at": ms(at),
    }

    async def run(conn: AsyncConnection) -> bool:
        found = await conn.execute(
            select(_t.id).where(_t.event == message.event, _t.channel == message.channel)
        )
        if found.first() is not None:
            return False
        await conn.execute(insert(notifications).values(row))
        return True

    try:
        return await core.write("recording a notification", run)
    except StoreError as error:
        if isinstance(error.__cause__, IntegrityError):
            return False  # recorded at the same moment by another process
        raise


async def mark(core: Core, event: str, channel: str, state: str, attempts: int, at: float) -> None:
    """A message was sent or dropped after `attempts` tries."""

    async def run(conn: AsyncConnection) -> None:
        where = (_t.event == event) & (_t.channel == channel)
        await conn.execute(
            update(notifications).where(where).values(state=state, attempts=attempts, updated_at=ms(at))
        )

    await core.write("marking a notification", run)


async def load_pending(core: Core, channel: str) -> list[StoredMessage]:
    """Messages of `channel` recorded pending and never marked, oldest first."""
    query = (
        select(notifications)
        .where(_t.state == "pending", _t.channel == channel)
        .order_by(_t.id)
        .limit(READ_LIMIT)
    )

    def read(conn: Connection) -> list[StoredMessage]:
        return [StoredMessage(r.event, r.channel, r.title, r.body, r.attempts) for r in conn.execute(query)]

    return await core.read("reading pending notifications", read)


def delete_settled_before(conn: Connection, cutoff_ms: int) -> int:
    """Delete the messages sent or dropped before `cutoff_ms` (a pending one is kept: a leader
    still owes it); returns how many."""
    settled = (_t.state != "pending") & (_t.updated_at < cutoff_ms)
    return max(conn.execute(delete(notifications).where(settled)).rowcount, 0)
