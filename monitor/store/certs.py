"""Host certificates in the database: written by the leader as it sees them, read back by every
replica (`monitor.parts.certs`), and pinned by `libertai-monitor certs accept`. Rows cross as
`monitor.core.certs.HostCert` values; times are stored in epoch milliseconds.

A pin is written only where none is stored: a leader that has not read an accepted pin yet never
writes its older one over it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Row, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from monitor.core.certs import HostCert, accept
from monitor.store.core import Core, ms
from monitor.store.schema import certificates

_t = certificates.c


def _ms(t: float | None) -> int | None:
    return None if t is None else ms(t)


def _values(r: HostCert) -> dict[str, Any]:
    return {
        "sha256": r.sha256,
        "not_after": _ms(r.not_after),
        "seen_at": ms(r.seen_at),
        "changed_at": _ms(r.changed_at),
    }


async def save_certs(core: Core, records: Sequence[HostCert]) -> None:
    """Insert or update `records` in one transaction."""
    if not records:
        return

    async def run(conn: AsyncConnection) -> None:
        hosts = [r.host for r in records]
        found = await conn.execute(select(_t.host, _t.pinned).where(_t.host.in_(hosts)))
        pins = {host: pinned for host, pinned in found}
        for r in records:
            if r.host not in pins:
                await conn.execute(insert(certificates).values(host=r.host, pinned=r.pinned, **_values(r)))
                continue
            values = _values(r)
            if pins[r.host] is None and r.pinned is not None:
                values["pinned"] = r.pinned
            await conn.execute(update(certificates).where(_t.host == r.host).values(values))

    await core.write("saving certificates", run)


async def load_certs(core: Core) -> list[HostCert]:
    def read(conn: Connection) -> list[HostCert]:
        return [_record(row) for row in conn.execute(select(certificates).order_by(_t.host))]

    return await core.read("reading certificates", read)


async def accept_cert(core: Core, host: str) -> HostCert | None:
    """Pin the certificate `host` showed last; None when none is stored for it."""

    async def run(conn: AsyncConnection) -> HostCert | None:
        row = (await conn.execute(select(certificates).where(_t.host == host))).first()
        if row is None:
            return None
        record = accept(_record(row))
        await conn.execute(update(certificates).where(_t.host == host).values(pinned=record.pinned))
        return record

    return await core.write("accepting a certificate", run)


def _record(row: Row[Any]) -> HostCert:
    m = row._mapping
    return HostCert(
        host=m["host"],
        sha256=m["sha256"],
        not_after=None if m["not_after"] is None else m["not_after"] / 1000,
        seen_at=m["seen_at"] / 1000,
        changed_at=None if m["changed_at"] is None else m["changed_at"] / 1000,
        pinned=m["pinned"],
    )
