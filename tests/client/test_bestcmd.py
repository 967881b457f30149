"""`libertai-monitor best` without a monitor: bad configuration is one line and exit 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.subprocess  # each case runs the command as a child process

ROOT = Path(__file__).resolve().parents[2]


def run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "monitor", "best", *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_bad_listen_address_exits_2_with_one_line() -> None:
    proc = run("m", "--listen", "nonsense")
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1 and "--listen" in proc.stderr


def test_a_monitor_url_that_is_not_http_exits_2() -> None:
    proc = run("m", "--monitor-url", "ftp://x")
    assert proc.returncode == 2 and "http" in proc.stderr


def test_an_unreachable_monitor_exits_1_and_says_so() -> None:
    proc = run("m", "--monitor-url", "http://127.0.0.1:9", "--timeout", "2")
    assert proc.returncode == 1 and "cannot read http://127.0.0.1:9" in proc.stderr
