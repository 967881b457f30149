"""The command line as a user meets it: help derived from the settings, and one line for a bad one."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from monitor.config import FIELDS

pytestmark = pytest.mark.subprocess  # each case runs the command as a child process

BASE_ENV = {"PATH": "/usr/bin:/bin"}


def _monitor(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "monitor", *args],
        env={**BASE_ENV, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_run_help_lists_every_setting_with_its_environment_variable() -> None:
    out = _monitor("run", "--help").stdout
    missing = [f.env for f in FIELDS if f.env not in out]
    assert not missing


def test_probe_once_help_offers_only_the_flags_it_uses() -> None:
    out = _monitor("probe-once", "--help").stdout
    assert "--gateway-url" in out and "--config" in out
    assert "--listen" not in out and "--database-url" not in out


@pytest.mark.parametrize("command", ["run", "probe-once"])
def test_a_ca_bundle_that_is_not_pem_exits_2_with_one_line(command: str, tmp_path: Path) -> None:
    not_pem = tmp_path / "hostname"
    not_pem.write_text("my-machine\n")
    proc = _monitor(command, env={"LIBERTAI_MONITOR_CA_BUNDLE": str(not_pem)})
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "LIBERTAI_MONITOR_CA_BUNDLE" in lines[0] and "PEM" in lines[0]


def test_a_key_too_short_exits_2_with_one_line() -> None:
    proc = _monitor("probe-once", env={"LIBERTAI_API_KEY": "e"})
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "too short" in lines[0]


def test_a_misspelt_variable_is_warned_about_once(tmp_path: Path) -> None:
    env = {
        "LIBERTAI_MONITOR_GATEWAY_URL": "http://127.0.0.1:9",  # nothing listens: discovery fails fast
        "LIBERTAI_MONITOR_PROBE_TIMEOUT": "1",
        "LIBERTAI_MONITOR_PROBE_INTERVALL": "5",
        "LIBERTAI_MONITOR_LOG_FORMAT": "json",
    }
    proc = _monitor("probe-once", env=env)
    warned = [line for line in proc.stderr.splitlines() if "LIBERTAI_MONITOR_PROBE_INTERVALL" in line]
    assert len(warned) == 1 and "LIBERTAI_MONITOR_PROBE_INTERVAL?" in warned[0]
