"""Host certificates in the database (monitor.store.certs), as every replica reads them, and their
changes as incidents."""

from __future__ import annotations

from sqlalchemy import Connection, text

from monitor.core.certs import HostCert
from monitor.core.results import Outcome
from monitor.store import Store
from monitor.store.incidents import StoredIncident

from .conftest import T0

A, B = "https://a.example", "https://b.example"
OLD, NEW = "a" * 64, "b" * 64


async def test_certificates_read_back_as_written(store: Store) -> None:
    records = [HostCert(A, OLD, T0 + 86400 * 90, T0, None, OLD), HostCert(B, NEW, None, T0, T0, None)]
    await store.save_certs(records)
    assert await store.load_certs() == records


async def test_a_later_save_updates_what_was_seen(store: Store) -> None:
    await store.save_certs([HostCert(A, OLD, None, T0)])
    await store.save_certs([HostCert(A, NEW, T0 + 60, T0 + 10, T0 + 10)])
    assert await store.load_certs() == [HostCert(A, NEW, T0 + 60, T0 + 10, T0 + 10)]


async def test_accept_pins_the_certificate_seen_last(store: Store) -> None:
    await store.save_certs([HostCert(A, NEW, None, T0, T0, OLD)])
    accepted = await store.accept_cert(A)
    assert accepted is not None and accepted.pinned == NEW and accepted.trusted
    assert await store.load_certs() == [accepted]


async def test_accepting_a_host_never_seen_changes_nothing(store: Store) -> None:
    assert await store.accept_cert(B) is None
    assert await store.load_certs() == []


async def test_a_leader_never_writes_its_older_pin_over_an_accepted_one(store: Store) -> None:
    await store.save_certs([HostCert(A, NEW, None, T0, T0, OLD)])
    await store.accept_cert(A)
    # The leader has not read the accepted pin yet: it saves its record with the old pin.
    await store.save_certs([HostCert(A, NEW, None, T0 + 5, T0, OLD)])
    [record] = await store.load_certs()
    assert record.pinned == NEW and record.seen_at == T0 + 5


async def test_a_certificate_change_is_stored_as_an_incident(store: Store) -> None:
    items = [StoredIncident(T0, "cert", "m", A, Outcome.TLS_ERROR), StoredIncident(T0 + 1, "cert", "m", B)]
    await store.record_incidents(items)
    assert await store.load_incidents(T0) == items


async def test_the_certificates_revision_downgrades_and_upgrades_again(store: Store) -> None:
    from alembic import command

    from monitor.store.migrate import alembic_config

    await store.record_incidents([StoredIncident(T0, "cert", "m", A), StoredIncident(T0, "up", "m", A)])

    def downgrade(conn: Connection) -> None:
        config = alembic_config()
        config.attributes["connection"] = conn
        command.downgrade(config, "0006")

    async with store.engine.begin() as conn:
        await conn.run_sync(downgrade)
        kinds = (await conn.execute(text("SELECT kind FROM incidents"))).scalars().all()
        assert kinds == ["up"]
    await store.upgrade()
    await store.record_incidents([StoredIncident(T0 + 1, "cert", "m", A)])
    await store.save_certs([HostCert(A, OLD, None, T0)])
    assert [i.kind for i in await store.load_incidents(T0)] == ["up", "cert"]
