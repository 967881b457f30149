"""A throw-away PostgreSQL server for tests, from Debian's binaries (package `postgresql`).

One server per test session (started on first use, in a temporary directory, on a free loopback
port, stopped at the end); `PgServer.new_database()` gives each test a fresh, empty database.
Without the binaries the tests that need a server skip with the reason, except in CI (`CI` set):
there they fail, so that a CI machine without PostgreSQL cannot pass them silently.
"""

from __future__ import annotations

import itertools
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest

PG_BIN_DIRS = tuple(Path(f"/usr/lib/postgresql/{v}/bin") for v in (17, 16, 15, 14, 13))
SUPERUSER = "postgres"


def find_bin_dir() -> Path | None:
    override = os.environ.get("LIBERTAI_MONITOR_TEST_PG_BIN")
    candidates = (Path(override),) if override else PG_BIN_DIRS
    for d in candidates:
        if (d / "initdb").is_file() and (d / "pg_ctl").is_file():
            return d
    return None


def unavailable(reason: str) -> None:
    """Skip locally, fail in CI (where the `postgresql` package must be installed)."""
    if os.environ.get("CI"):
        pytest.fail(f"PostgreSQL tests cannot run in CI: {reason}", pytrace=False)
    pytest.skip(f"PostgreSQL tests skipped: {reason}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PgServer:
    def __init__(self, bin_dir: Path, *, durable: bool = False) -> None:
        self.bin_dir = bin_dir
        self.durable = durable  # False: no fsync (tests); True: the server's defaults (measurements)
        self.root = Path(tempfile.mkdtemp(prefix="monitor-pg-"))
        self.data = self.root / "data"
        self.port = _free_port()
        self._as_root = os.geteuid() == 0
        self._names = itertools.count(1)

    def _run(self, *args: str) -> None:
        # initdb and the server refuse to run as root: run them as the `postgres` user.
        cmd = ["runuser", "-u", SUPERUSER, "--", *args] if self._as_root else list(args)
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{Path(args[0]).name} failed: {(done.stderr or done.stdout).strip()[-500:]}")

    def start(self) -> None:
        if self._as_root:
            shutil.chown(self.root, SUPERUSER, SUPERUSER)
        self._run(
            str(self.bin_dir / "initdb"), "-D", str(self.data), "-A", "trust", "-U", SUPERUSER, "--no-sync"
        )
        options = f"-k {self.root} -h 127.0.0.1 -p {self.port}"
        if not self.durable:
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        log = str(self.root / "server.log")
        self._run(str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "-o", options, "-l", log, "-w", "start")

    def stop(self) -> None:
        try:
            self._run(str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str, driver: str = "asyncpg") -> str:
        return f"postgresql+{driver}://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        """A fresh empty database; its SQLAlchemy URL (asyncpg driver)."""
        name = f"test_{next(self._names)}"
        self._run(
            str(self.bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", SUPERUSER, name
        )
        return self.url(name)

    def sql(self, database: str, statement: str) -> str:
        """Run one statement through psql (as the superuser); its unaligned output."""
        cmd = [str(self.bin_dir / "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", SUPERUSER]
        cmd += ["-d", database, "-XAtc", statement]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=True)
        return done.stdout.strip()
