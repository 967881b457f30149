"""Short writes: discovery runs, membership changes, the best host of a model."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncConnection

from monitor.core.membership import MEMBERSHIP_EVENTS, MembershipChange
from monitor.store import bulk, queries
from monitor.store.core import Core, ms
from monitor.store.schema import DISCOVERY_ERROR_MAX, discovery_runs, membership_events
from monitor.store.types import DiscoveryRecord

_MEMBERSHIP_COLUMNS = ("at", "model_id", "host_id", "event")
_INSERT_MEMBERSHIP = membership_events.insert()
_INSERT_MEMBERSHIP_JSON = bulk.insert_json_rows(membership_events, _MEMBERSHIP_COLUMNS, constants=["vantage"])


async def record_discovery(core: Core, record: DiscoveryRecord) -> None:
    error = None if record.error is None else record.error[:DISCOVERY_ERROR_MAX]

    async def run(conn: AsyncConnection) -> None:
        await conn.execute(
            discovery_runs.insert().values(
                at=ms(record.at),
                ok=record.ok,
                duration_s=float(record.duration_s),
                models=record.models,
                hosts=record.hosts,
                error=error,
                vantage=core.vantage,
            )
        )

    await core.write("recording a discovery run", run)


async def record_membership(core: Core, events: Sequence[MembershipChange]) -> None:
    if not events:
        return
    for ev in events:
        if ev.event not in MEMBERSHIP_EVENTS:
            raise ValueError(f"unknown membership event: {ev.event!r}")
    new: tuple[dict[str, int], dict[str, int]] = ({}, {})

    async def run(conn: AsyncConnection) -> None:
        nonlocal new
        new = await core.ensure_ids(conn, {e.model for e in events}, {e.host for e in events})
        model_ids = core.model_ids | new[0]
        host_ids = core.host_ids | new[1]
        rows = [(ms(e.at), model_ids[e.model], host_ids[e.host], e.event) for e in events]
        # On SQLite one step, whatever the number (see monitor.store.bulk).
        await bulk.insert(
            conn,
            _INSERT_MEMBERSHIP_JSON,
            membership_events.insert(),
            _MEMBERSHIP_COLUMNS,
            rows,
            vantage=core.vantage,
        )

    await core.write("recording membership events", run)
    core.commit_ids(new)


async def save_best(core: Core, model: str, host: str | None, at: float) -> None:
    """Upsert a model's current best host (None: no host is up). `since` moves only when the host
    changes."""
    new: tuple[dict[str, int], dict[str, int]] = ({}, {})

    async def run(conn: AsyncConnection) -> None:
        nonlocal new
        new = await core.ensure_ids(conn, {model}, set() if host is None else {host})
        model_id = (core.model_ids | new[0])[model]
        host_id = None if host is None else (core.host_ids | new[1])[host]
        await conn.execute(
            queries.upsert_best(core.dialect),
            {"vantage": core.vantage, "model_id": model_id, "host_id": host_id, "since": ms(at)},
        )

    await core.write("saving the best host", run)
    core.commit_ids(new)
