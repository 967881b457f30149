"""Alembic, driven from code: find the scripts, build the Config, upgrade inside a running loop.

The scripts live in the repository's top-level `migrations/`, which the installed package carries
as `monitor.migrations`; `migrations_dir()` finds them either way. No alembic.ini in the working
directory is read, and no logging configuration is touched.
"""

from __future__ import annotations

import importlib.resources
import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from monitor import __version__
from monitor.store.engine import DEFAULT_BUSY_TIMEOUT_MS, WRITE_OPTION, create_engine, sqlite_path
from monitor.store.errors import SchemaTooNewError


def migrations_dir() -> Path:
    """The Alembic script directory beside the imported `monitor` package: `monitor/migrations`
    when installed, else the source tree's `migrations/` beside `monitor/`. Looked up by path, not
    by import, so that a source checkout never picks another checkout's scripts through an editable
    install's import hook."""
    package = Path(__file__).resolve().parents[1]
    for candidate in (package / "migrations", package.parent / "migrations"):
        if (candidate / "env.py").is_file():
            return candidate
    try:
        installed = Path(str(importlib.resources.files("monitor.migrations")))
    except ModuleNotFoundError:
        pass
    else:
        if (installed / "env.py").is_file():
            return installed
    raise FileNotFoundError("Alembic scripts not found (neither monitor/migrations nor ./migrations)")


def alembic_config(url: str | None = None) -> Config:
    """A Config built in code; `url` is only needed when no connection is handed over."""
    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    if url is not None:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def _quiet_alembic() -> None:
    """Alembic's info lines ("Context impl SQLiteImpl.", each script's name) at every start are
    noise: the callers say what changed (`schema_revision` before and after). A level set by the
    application's own logging configuration is left as it is."""
    alembic_log = logging.getLogger("alembic")
    if alembic_log.level == logging.NOTSET:
        alembic_log.setLevel(logging.WARNING)


def run_upgrade(connection: Connection, revision: str = "head") -> None:
    """Upgrade over a sync connection (call through `AsyncConnection.run_sync`). Raises
    SchemaTooNewError, before changing anything, when the database is at a revision these scripts
    do not know (a newer version of the package upgraded it)."""
    _quiet_alembic()
    config = alembic_config()
    config.attributes["connection"] = connection
    check_known_revision(connection, ScriptDirectory.from_config(config))
    command.upgrade(config, revision)


def check_known_revision(connection: Connection, scripts: ScriptDirectory) -> None:
    known = {script.revision for script in scripts.walk_revisions()}
    current = MigrationContext.configure(connection).get_current_heads()
    unknown = sorted(set(current) - known)
    if unknown:
        raise SchemaTooNewError(
            f"the database is at schema revision {', '.join(unknown)}, which libertai-monitor "
            f"{__version__} does not know (newest known: {scripts.get_current_head()}): a newer version "
            "upgraded it; install that version or a later one again, or use another database"
        )


def _current_revision(connection: Connection) -> str | None:
    _quiet_alembic()
    heads = MigrationContext.configure(connection).get_current_heads()
    return ",".join(sorted(heads)) or None


async def schema_revision(engine: AsyncEngine) -> str | None:
    """The database's schema revision (None for a database without the schema)."""
    async with engine.connect() as conn:
        return await conn.run_sync(_current_revision)


async def upgrade_database(url: str, *, busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS) -> None:
    """Apply pending migrations to the database at `url` (creates a SQLite file's directory)."""
    path = sqlite_path(url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, busy_timeout_ms=busy_timeout_ms)
    try:
        await upgrade_with_engine(engine)
    finally:
        await engine.dispose()


async def upgrade_with_engine(engine: AsyncEngine, revision: str = "head") -> None:
    """Apply pending migrations (up to `revision`) in one write transaction (BEGIN IMMEDIATE on
    SQLite, so two processes upgrading at once take turns)."""
    async with engine.connect() as conn:
        await conn.execution_options(**{WRITE_OPTION: True})
        async with conn.begin():
            await conn.run_sync(run_upgrade, revision)
