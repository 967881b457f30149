"""Fixtures for the history store's tests: every test that takes `db_url` (or `store`) runs on a
temporary-file SQLite database (never :memory:) and on a fresh database of a real PostgreSQL
server (see tests/pg.py; skipped with the reason without its binaries, failed in CI)."""

from __future__ import annotations

import importlib.util
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from monitor.results import Outcome, ProbeKind, ProbeResult
from monitor.store import Store
from tests.pg import PgServer, find_bin_dir, unavailable

T0 = 1_700_002_800.0  # an hour boundary (epoch seconds)

MakeResult = Callable[..., ProbeResult]

BACKENDS = ("sqlite", "postgresql")


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


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def db_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if backend == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'history.db'}"
    server: PgServer = request.getfixturevalue("pg_server")
    return server.new_database()


def sqlite_only(backend: str, why: str) -> None:
    """Skip a test of a SQLite mechanism (file, pragma, lock) on the other backends."""
    if backend != "sqlite":
        pytest.skip(f"SQLite only: {why}")


@pytest.fixture
async def store(db_url: str) -> AsyncIterator[Store]:
    s = await Store.open(db_url, retry_initial_s=0.05, retry_max_s=0.2)
    await s.upgrade()
    s.start_writer()
    yield s
    await s.close(grace_s=2)


@pytest.fixture
def make_result() -> MakeResult:
    def make(
        at: float = T0,
        *,
        model: str = "llama-3",
        host: str = "https://a.libertai.io",
        kind: ProbeKind = ProbeKind.HEALTH,
        outcome: Outcome = Outcome.OK,
        **fields: Any,
    ) -> ProbeResult:
        defaults: dict[str, Any] = {"status": 200, "connect_ms": 3.0, "total_ms": 40.0}
        if kind in (ProbeKind.COMPLETION, ProbeKind.EMBEDDING):
            defaults["ttft_ms"] = 300.0
        defaults.update(fields)
        return ProbeResult(model=model, host=host, kind=kind, outcome=outcome, started_at=at, **defaults)

    return make
