"""Fixtures shared by the store and high-availability tests: one throw-away PostgreSQL server for
the whole session (tests/pg.py; skipped with the reason without its binaries, failed in CI), and
a store on whichever database the directory's `db_url` fixture names.

The kinds of test that leave the process or wait on the real clock (markers `postgresql`,
`subprocess`, `e2e`, registered in pyproject.toml) are also `slow`, so that `-m "not slow"` is
the fast loop and `-m postgresql` (say) runs one kind."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import AsyncIterator, Iterator

import pytest
from hypothesis import settings

from monitor.store import Store
from tests.pg import PgServer, find_bin_dir, unavailable

# Property tests: the same examples on every run and machine (derandomize), few enough for the fast
# loop; HYPOTHESIS_PROFILE=thorough searches with fresh random examples, many more of them.
settings.register_profile("default", deadline=None, max_examples=60, derandomize=True, database=None)
settings.register_profile("thorough", deadline=None, max_examples=2000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

SLOW_KINDS = ("postgresql", "subprocess", "e2e")
# The fast loop (`-m "not slow"`) runs on two worker processes when pytest-xdist is installed and
# `-n` was not given: it is meant to take well under a minute on two cores. `-n 0` runs it in one.
FAST_LOOP_WORKERS = 2


@pytest.hookimpl(tryfirst=True)  # before xdist reads `-n`
def pytest_cmdline_main(config: pytest.Config) -> None:
    fast_loop = config.option.markexpr.replace("'", '"') in ("not slow", '"not slow"')
    is_worker = "PYTEST_XDIST_WORKER" in os.environ
    if fast_loop and not is_worker and getattr(config.option, "numprocesses", 0) is None:
        config.option.numprocesses = FAST_LOOP_WORKERS


# Fixtures that give a test a PostgreSQL database: the test is of kind `postgresql`.
PG_FIXTURES = {"pg_server", "pg_url"}


@pytest.hookimpl(tryfirst=True)  # before `-m` selects on the markers added here
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if PG_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.postgresql)
        if any(item.get_closest_marker(kind) for kind in SLOW_KINDS):
            item.add_marker(pytest.mark.slow)


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
