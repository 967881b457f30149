"""Database URLs: the supported drivers, and one readable line for anything else."""

from __future__ import annotations

import sys

import pytest

from monitor.cli import main
from monitor.store import MissingDriverError, Store, UnsupportedDatabaseError
from monitor.store.engine import database_url

PG_URL = "postgresql+asyncpg://monitor:pw@127.0.0.1:1/history"


@pytest.fixture
def no_asyncpg(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "asyncpg", None)  # `import asyncpg` now fails


@pytest.mark.usefixtures("no_asyncpg")
async def test_a_missing_postgres_driver_names_the_extra_to_install() -> None:
    with pytest.raises(MissingDriverError) as caught:
        await Store.open(PG_URL)
    message = str(caught.value)
    assert (
        message == "the postgresql driver asyncpg is not installed: pip install 'libertai-monitor[postgres]'"
    )
    assert "pw" not in message


@pytest.mark.usefixtures("no_asyncpg")
def test_db_upgrade_without_the_postgres_driver_exits_2_with_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LIBERTAI_MONITOR_DATABASE_URL", PG_URL)
    assert main(["db", "upgrade"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "pip install 'libertai-monitor[postgres]'" in err
    assert ":pw@" not in err


@pytest.mark.parametrize(
    ("given", "used"),
    [
        ("postgresql://u@db/h", "postgresql+asyncpg"),
        ("postgres://u@db/h", "postgresql+asyncpg"),
        ("postgresql+asyncpg://u@db/h", "postgresql+asyncpg"),
        ("sqlite:///h.db", "sqlite+aiosqlite"),
    ],
)
def test_urls_without_the_async_driver_get_it(given: str, used: str) -> None:
    assert database_url(given).drivername == used


@pytest.mark.parametrize(
    "url", ["mysql+aiomysql://u@db/h", "postgresql+psycopg2://u@db/h", "sqlite+pysqlite:///h.db", "nonsense"]
)
def test_other_databases_and_drivers_are_refused_with_the_supported_ones_named(url: str) -> None:
    with pytest.raises(UnsupportedDatabaseError, match=r"sqlite\+aiosqlite|postgresql\+asyncpg"):
        database_url(url)
