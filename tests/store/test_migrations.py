"""The schema exists only through the Alembic migrations, which match the models and ship with
the package."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.types import String, Text

from monitor.store import Store, StoreError
from monitor.store.migrate import alembic_config, migrations_dir, upgrade_database
from monitor.store.schema import metadata

from .conftest import MakeResult, sqlite_only

REPO = Path(__file__).resolve().parents[2]

TABLES = {
    "incidents",
    "certificates",
    "maintenance_windows",
    "notifications",
    "models",
    "hosts",
    "membership_events",
    "probe_results",
    "rollups_hourly",
    "rollup_state",
    "discovery_runs",
    "best_hosts",
    "vantages",
    "host_facts",
}


def _tables(conn: Connection) -> set[str]:
    return set(inspect(conn).get_table_names())


async def test_upgrade_creates_schema_from_empty_database(db_url: str) -> None:
    store = await Store.open(db_url)
    try:
        async with store.engine.connect() as conn:
            assert await conn.run_sync(_tables) == set()
        await store.upgrade()
        async with store.engine.connect() as conn:
            assert await conn.run_sync(_tables) == TABLES | {"alembic_version"}
            version = (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar()
        assert version == "0008"
    finally:
        await store.close()


async def test_upgrade_is_idempotent_and_keeps_data(store: Store, make_result: MakeResult) -> None:
    store.submit(make_result())
    await store.flush()
    await store.upgrade()
    await store.upgrade()
    async with store.engine.connect() as conn:
        versions = (await conn.execute(text("SELECT version_num FROM alembic_version"))).all()
    assert versions == [("0008",)]
    assert len(await store.load_recent_results(0)) == 1


async def test_migrated_schema_matches_the_models(store: Store) -> None:
    def diff(conn: Connection) -> list[object]:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(context, metadata))

    async with store.engine.connect() as conn:
        assert await conn.run_sync(diff) == []


async def test_big_tables_are_clustered_without_rowid(store: Store, backend: str) -> None:
    sqlite_only(backend, "WITHOUT ROWID is a SQLite table option")
    # compare_metadata does not see dialect options: check the SQLite DDL itself.
    async with store.engine.connect() as conn:
        rows = (await conn.execute(text("SELECT name, sql FROM sqlite_master WHERE type = 'table'"))).all()
    ddl = {name: sql for name, sql in rows}
    assert "WITHOUT ROWID" in ddl["probe_results"]
    assert "WITHOUT ROWID" in ddl["rollups_hourly"]
    for table in metadata.tables.values():
        expect = table.dialect_options["sqlite"]["with_rowid"] is False
        assert ("WITHOUT ROWID" in ddl[table.name]) is expect, table.name


async def test_upgrade_of_a_file_that_is_not_a_database_raises_store_error(tmp_path: Path) -> None:
    path = tmp_path / "history.db"
    path.write_bytes(b"this is not an SQLite database" * 200)
    store = await Store.open(f"sqlite+aiosqlite:///{path}")
    try:
        with pytest.raises(StoreError, match="upgrade failed"):
            await store.upgrade()
        with pytest.raises(StoreError, match="loading best hosts failed"):
            await store.load_best()
    finally:
        await store.close()


async def test_upgrade_leaves_application_loggers_enabled(db_url: str) -> None:
    app_logger = logging.getLogger("monitor.some_module")
    await upgrade_database(db_url)
    assert app_logger.disabled is False
    assert logging.getLogger("monitor.store").disabled is False


async def test_upgrade_database_creates_the_parent_directory(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "history.db"
    await upgrade_database(f"sqlite+aiosqlite:///{path}")
    assert path.is_file()


async def test_no_column_can_hold_an_api_key(store: Store) -> None:
    # The API key must never reach the database. The only text columns allowed are names we
    # control: model ids, host URLs, membership event and incident kinds, the discovery error
    # summary (built by our own code, secret-free), vantage names (from the operator's settings),
    # Alembic's own version number, and maintenance windows (host, model and reason as the operator
    # typed them at the `maintenance` command), and notifications (their text is built by our code
    # from model, host and reason; the channel is the URLs' schemes, never a URL). Probe results
    # keep no text but their vantage (`ProbeResult.detail` is not stored). A new text column must
    # be added here on purpose.
    allowed = {
        ("models", "name"),
        ("hosts", "url"),
        ("membership_events", "event"),
        ("incidents", "kind"),
        ("discovery_runs", "error"),
        ("alembic_version", "version_num"),
        ("vantages", "name"),
        ("maintenance_windows", "host"),
        ("maintenance_windows", "model"),
        ("maintenance_windows", "reason"),
        ("notifications", "event"),
        ("notifications", "channel"),
        ("notifications", "state"),
        ("notifications", "title"),
        ("notifications", "body"),
        ("certificates", "host"),
        ("certificates", "sha256"),  # hex fingerprints of public certificates
        ("certificates", "pinned"),
        ("host_facts", "kind"),
        # JSON of what probes measured: counts, rates, path names, and the tokens a host answered
        # the fixed identity prompt with (the prompt carries no secret, nor can the answer).
        ("host_facts", "value"),
    } | {
        (table, "vantage")
        for table in (
            "probe_results",
            "rollups_hourly",
            "rollup_state",
            "best_hosts",
            "membership_events",
            "discovery_runs",
            "incidents",
            "host_facts",
        )
    }

    def text_columns(conn: Connection) -> set[tuple[str, str]]:
        insp = inspect(conn)
        found = set()
        for table in insp.get_table_names():
            for column in insp.get_columns(table):
                if isinstance(column["type"], (String, Text)):
                    found.add((table, column["name"]))
        return found

    async with store.engine.connect() as conn:
        assert await conn.run_sync(text_columns) == allowed
    model_text = {
        (t.name, c.name) for t in metadata.tables.values() for c in t.columns if isinstance(c.type, String)
    }
    assert model_text == allowed - {("alembic_version", "version_num")}


def test_product_code_never_creates_the_schema_outside_migrations() -> None:
    offenders = [
        str(path.relative_to(REPO))
        for path in (REPO / "monitor").rglob("*.py")
        if "create_all(" in path.read_text(encoding="utf-8")
    ]
    assert offenders == []


def test_migrations_dir_finds_the_source_tree() -> None:
    path = migrations_dir()
    assert path == REPO / "migrations"
    assert (path / "env.py").is_file()
    assert (path / "script.py.mako").is_file()
    assert (path / "__init__.py").is_file()
    assert (path / "versions" / "__init__.py").is_file()


@pytest.mark.slow
def test_migrations_dir_and_upgrade_work_from_an_installed_layout(tmp_path: Path) -> None:
    # Lay the package out as `pip install .` does (migrations/ -> monitor/migrations/), then run
    # from an unrelated directory with only that layout on the path.
    site = tmp_path / "site"
    pkg = site / "monitor"
    pkg.mkdir(parents=True)
    for name in ("__init__.py", "logging.py", "slices.py"):
        shutil.copy(REPO / "monitor" / name, pkg / name)
    shutil.copytree(REPO / "monitor" / "core", pkg / "core", ignore=shutil.ignore_patterns("__pycache__"))
    client = REPO / "clients" / "libertai-failover" / "libertai_failover"
    shutil.copytree(client, site / "libertai_failover", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(REPO / "monitor" / "store", pkg / "store", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(REPO / "migrations", pkg / "migrations", ignore=shutil.ignore_patterns("__pycache__"))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    db = tmp_path / "installed.db"
    code = (
        "import asyncio, sqlite3\n"
        "from monitor.store.migrate import alembic_config, migrations_dir, upgrade_database\n"
        "print(migrations_dir())\n"
        f"asyncio.run(upgrade_database('sqlite+aiosqlite:///{db}'))\n"
        f"print(sqlite3.connect('{db}').execute('select version_num from alembic_version').fetchone()[0])\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"PYTHONPATH": str(site)}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=elsewhere, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    found, version = done.stdout.split()
    assert Path(found) == pkg / "migrations"
    assert version == "0008"


async def test_the_vantage_revision_downgrades_and_upgrades_again(
    store: Store, make_result: MakeResult
) -> None:
    store.submit(make_result())
    await store.flush()

    def downgrade(conn: Connection) -> None:
        config = alembic_config()
        config.attributes["connection"] = conn
        command.downgrade(config, "0001")

    async with store.engine.begin() as conn:
        await conn.run_sync(downgrade)
        assert (await conn.execute(text("SELECT count(*) FROM probe_results"))).scalar() == 1
    await store.upgrade()
    assert len(await store.load_recent_results(0)) == 1
