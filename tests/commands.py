"""What the tests of the database commands (`maintenance`, `certs`) share: a temporary SQLite
database named by the environment, and a refusal's shape (exit 2, one line, no traceback)."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.cli import main

Capsys = pytest.CaptureFixture[str]


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    for var in ("LIBERTAI_MONITOR_CONFIG", "LIBERTAI_API_KEY", "LIBERTAI_MONITOR_API_KEY_FILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)
    url = f"sqlite+aiosqlite:///{tmp_path / 'monitor.db'}"
    monkeypatch.setenv("LIBERTAI_MONITOR_DATABASE_URL", url)
    return url


def refused(argv: list[str], capsys: Capsys) -> str:
    """The error line of a command that must refuse `argv`."""
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err
    return err
