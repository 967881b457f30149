"""Fixtures for the history store's tests: every test that takes `db_url` (or `store`) runs on a
temporary-file SQLite database (never :memory:) and on a fresh database of a real PostgreSQL
server (see tests/pg.py; skipped with the reason without its binaries, failed in CI)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine
from structlog.testing import capture_logs

from monitor.core.results import Outcome, ProbeKind, ProbeResult
from tests.pg import PgServer

T0 = 1_700_002_800.0  # an hour boundary (epoch seconds)

MakeResult = Callable[..., ProbeResult]

BACKENDS = ("sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql))


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def db_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if backend == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'history.db'}"
    server: PgServer = request.getfixturevalue("pg_server")
    return server.new_database()


class Logs:
    """The store's log lines (structlog's events) written during a test.

    A logger that wrote once after `configure_logging` (called by the command-line tests) keeps
    that configuration and writes through the standard library, where `capture_logs` does not see
    it: lines are taken from both."""

    def __init__(self, direct: list[MutableMapping[str, Any]], caplog: pytest.LogCaptureFixture) -> None:
        self._direct = direct
        self._caplog = caplog

    def __iter__(self) -> Iterator[Mapping[str, Any]]:
        yield from self._direct
        yield from (r.msg for r in self._caplog.records if isinstance(r.msg, dict))


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> Iterator[Logs]:
    caplog.set_level(logging.INFO, logger="monitor.store")
    with capture_logs() as direct:
        yield Logs(direct, caplog)


def sqlite_only(backend: str, why: str) -> None:
    """Skip a test of a SQLite mechanism (file, pragma, lock) on the other backends."""
    if backend != "sqlite":
        pytest.skip(f"SQLite only: {why}")


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


# A fault installed on an engine: `install(engine, fail)` makes every statement first go through
# `fail` (a `before_cursor_execute` listener that may raise) until the returned function removes it.
StatementFault = Callable[[AsyncEngine, Callable[..., None]], Callable[[], None]]


@pytest.fixture
def statement_fault() -> Iterator[StatementFault]:
    """Installs statement faults on engines; every one still installed is removed at the end."""
    removers: list[Callable[[], None]] = []

    def install(engine: AsyncEngine, fail: Callable[..., None]) -> Callable[[], None]:
        event.listen(engine.sync_engine, "before_cursor_execute", fail)

        def remove() -> None:
            if event.contains(engine.sync_engine, "before_cursor_execute", fail):
                event.remove(engine.sync_engine, "before_cursor_execute", fail)

        removers.append(remove)
        return remove

    yield install
    for remove in removers:
        remove()
