"""Notifications in the database: the leader records each message pending before it sends it and
marks it sent or dropped after, so that a new leader sends what was pending (`load_pending`) and
never what a predecessor recorded (`claim` is False for an event already there).

A new leader may also see for itself a change its predecessor recorded, at another moment (so as
another event). What was last recorded of a subject (a host of a model, a model, the gateway, the
key) is what was announced of it: a message saying it again is no news, whichever came first. So
`claim` refuses a message whose subject's last record is of the same kind, and `load_pending`
marks `superseded` a pending message that is no longer its subject's last record
(`monitor.core.notices.subject_prefixes`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from sqlalchemy import Connection, Select, delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from monitor.core.notices import subject_prefixes
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
        said = subject_prefixes(message.event)
        if said is not None:
            last = (await conn.execute(_last_of(said[1], message.channel))).first()
            if last is not None and last.event.startswith(said[0]):
                return False  # the subject's last message said this already
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


def _last_of(prefixes: tuple[str, ...], channel: str, after_id: int = 0) -> Select[tuple[int, str]]:
    """The newest record of `channel` whose event starts with one of `prefixes` (after `after_id`)."""
    starts = or_(*(func.substr(_t.event, 1, len(p)) == p for p in prefixes))
    where = (_t.channel == channel) & starts & (_t.id > after_id)
    return select(_t.id, _t.event).where(where).order_by(_t.id.desc()).limit(1)


async def load_pending(core: Core, channel: str, at: float = 0.0) -> list[StoredMessage]:
    """Messages of `channel` recorded pending and never marked, oldest first; one that is no longer
    the last record of its subject is marked `superseded` instead (what it says is stale)."""
    query = (
        select(notifications)
        .where(_t.state == "pending", _t.channel == channel)
        .order_by(_t.id)
        .limit(READ_LIMIT)
    )

    def run(conn: Connection) -> list[StoredMessage]:
        out = []
        for r in conn.execute(query).all():
            said = subject_prefixes(r.event)
            if said is not None:
                later = conn.execute(_last_of(said[1], channel, after_id=r.id)).first()
                if later is not None:
                    done = update(notifications).where(_t.id == r.id)
                    conn.execute(done.values(state="superseded", updated_at=ms(at)))
                    continue
            out.append(StoredMessage(r.event, r.channel, r.title, r.body, r.attempts))
        return out

    async def write(conn: AsyncConnection) -> list[StoredMessage]:
        return await conn.run_sync(run)

    return await core.write("reading pending notifications", write)


def delete_settled_before(conn: Connection, cutoff_ms: int) -> int:
    """Delete the messages sent or dropped before `cutoff_ms` (a pending one is kept: a leader
    still owes it); returns how many."""
    settled = (_t.state != "pending") & (_t.updated_at < cutoff_ms)
    return max(conn.execute(delete(notifications).where(settled)).rowcount, 0)
