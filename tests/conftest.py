"""Fixtures shared by the store and high-availability tests: one throw-away PostgreSQL server for
the whole session (tests/pg.py; skipped with the reason without its binaries, failed in CI), and
a store on whichever database the directory's `db_url` fixture names."""

from __future__ import annotations

import importlib.util
from collections.abc import AsyncIterator, Iterator

import pytest

from monitor.store import Store
from tests.pg import PgServer, find_bin_dir, unavailable


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    if importlib.util.find_spec("asyncpg") is None:
        unavailable("the asyncpg driver is not installed (pip install 'libertai-monitor[postgres]')")
    bin_dir = find_bin_dir()
    if bin_dir is None:
        unavailable("no PostgreSQL server binaries (install Debian's `postgresql` package)")
        raise AssertionError("unreachable")
    server = PgServer(bin_dir)
    try:
        server.start()
    except (RuntimeError, OSError) as error:
        server.stop()
        unavailable(f"the test server did not start: {error}")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def store(db_url: str) -> AsyncIterator[Store]:
    s = await Store.open(db_url, retry_initial_s=0.05, retry_max_s=0.2)
    await s.upgrade()
    s.start_writer()
    yield s
    await s.close(grace_s=2)
