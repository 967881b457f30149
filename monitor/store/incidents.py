"""The status page's incidents in the database: written by the leader, read back at start and by
followers, deleted with the discovery runs (`monitor.store.maintenance`).

Rows cross as `StoredIncident` values (the page's own `Incident` lives above the store)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, delete, select
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.orm import aliased

from monitor.core.results import Outcome
from monitor.store.codes import OUTCOME_BY_CODE, OUTCOME_CODES
from monitor.store.core import Core, ms
from monitor.store.schema import hosts, incidents, models

INCIDENT_KINDS = frozenset({"down", "up", "best", "cert"})
# At most this many are read back: the page lists 200, the memory keeps 5000.
READ_LIMIT = 5000


@dataclass(frozen=True, slots=True)
class StoredIncident:
    at: float  # epoch seconds (millisecond resolution once stored)
    kind: str  # down, up, best, cert
    model: str
    host: str | None
    reason: Outcome | None = None
    previous: str | None = None


async def record_incidents(core: Core, items: Sequence[StoredIncident]) -> None:
    """Insert `items` in one transaction (StoreError on failure: the caller keeps them)."""
    if not items:
        return
    for i in items:
        if i.kind not in INCIDENT_KINDS:
            raise ValueError(f"unknown incident kind: {i.kind!r}")
    urls = {u for i in items for u in (i.host, i.previous) if u is not None}
    new: tuple[dict[str, int], dict[str, int]] = ({}, {})

    async def run(conn: AsyncConnection) -> None:
        nonlocal new
        new = await core.ensure_ids(conn, {i.model for i in items}, urls)
        model_ids, host_ids = core.model_ids | new[0], core.host_ids | new[1]
        rows = [
            {
                "at": ms(i.at),
                "kind": i.kind,
                "model_id": model_ids[i.model],
                "host_id": None if i.host is None else host_ids[i.host],
                "outcome": None if i.reason is None else OUTCOME_CODES[i.reason],
                "previous_id": None if i.previous is None else host_ids[i.previous],
                "vantage": core.vantage,
            }
            for i in items
        ]
        await conn.execute(incidents.insert(), rows)

    await core.write("recording incidents", run)
    core.commit_ids(new)


async def load_incidents(core: Core, since: float, vantage: str | None = None) -> list[StoredIncident]:
    """The incidents at or after `since` (the newest `READ_LIMIT`), oldest first."""
    who = core.vantage_of(vantage)
    host, previous = aliased(hosts), aliased(hosts)
    query = (
        select(
            incidents.c.at, incidents.c.kind, models.c.name, host.c.url, incidents.c.outcome, previous.c.url
        )
        .join(models, models.c.id == incidents.c.model_id)
        .outerjoin(host, host.c.id == incidents.c.host_id)
        .outerjoin(previous, previous.c.id == incidents.c.previous_id)
        .where(incidents.c.vantage == who, incidents.c.at >= ms(since))
        .order_by(incidents.c.at.desc(), incidents.c.id.desc())
        .limit(READ_LIMIT)
    )

    def read(conn: Connection) -> list[StoredIncident]:
        return [
            StoredIncident(
                at / 1000, kind, model, url, None if code is None else OUTCOME_BY_CODE.get(code), prev
            )
            for at, kind, model, url, code, prev in conn.execute(query)
        ][::-1]

    return await core.read("reading incidents", read)


def delete_incidents_before(conn: Connection, vantage: str, before_ms: int) -> int:
    """Retention: incidents of `vantage` older than `before_ms`; returns the rows deleted."""
    result = conn.execute(delete(incidents).where(incidents.c.vantage == vantage, incidents.c.at < before_ms))
    return max(result.rowcount, 0)
