"""Alembic environment for libertai-monitor's history store.

Three ways in:
- from the service (`monitor.store.migrate`): a sync Connection arrives in
  `config.attributes["connection"]` (run through `AsyncConnection.run_sync` inside the running loop);
- from the `alembic` command: no connection; an async engine is made from
  LIBERTAI_MONITOR_DATABASE_URL or `sqlalchemy.url`, and driven with `asyncio.run`;
- offline (`alembic upgrade head --sql`): SQL is printed.

There is deliberately no `fileConfig()`: it would disable the application's loggers.
"""

from __future__ import annotations

import asyncio
import os

from alembic import context
from sqlalchemy.engine import Connection

from monitor.store.schema import metadata

config = context.config
target_metadata = metadata


def _url() -> str:
    url = os.environ.get("LIBERTAI_MONITOR_DATABASE_URL") or config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no database URL: set LIBERTAI_MONITOR_DATABASE_URL or sqlalchemy.url")
    return url


def _run_with(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things: later migrations copy-and-move tables in batch mode.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _run_offline() -> None:
    url = _url()
    context.configure(
        url=url,
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        render_as_batch=url.startswith("sqlite"),
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_async() -> None:
    from monitor.store.engine import WRITE_OPTION, create_engine, sqlite_path

    url = _url()
    path = sqlite_path(url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            await conn.execution_options(**{WRITE_OPTION: True})
            async with conn.begin():
                await conn.run_sync(_run_with)
    finally:
        await engine.dispose()


if context.is_offline_mode():
    _run_offline()
else:
    _connection = config.attributes.get("connection")
    if _connection is None:
        asyncio.run(_run_async())
    else:
        _run_with(_connection)
