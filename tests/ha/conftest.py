"""Fixtures for the high-availability tests: a real PostgreSQL server (tests/pg.py, shared with the
store tests' fixture; skipped with the reason without its binaries, failed in CI) and, for the tail
reads, a store on SQLite and on PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.pg import PgServer


@pytest.fixture
def pg_url(pg_server: PgServer) -> str:
    """A fresh empty PostgreSQL database (SQLAlchemy URL)."""
    return pg_server.new_database()


@pytest.fixture(params=("sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql)))
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'history.db'}"
    server: PgServer = request.getfixturevalue("pg_server")
    return server.new_database()
