"""What `probe-once` says besides its table: which probes did not run, and why hosts were skipped."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from monitor.cli import main
from tests.service.support import env_for, network


def _environ(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    for var in ("LIBERTAI_API_KEY", "LIBERTAI_MONITOR_API_KEY_FILE", "LIBERTAI_MONITOR_CONFIG"):
        monkeypatch.delenv(var, raising=False)
    for var, value in env.items():
        monkeypatch.setenv(var, value)


async def test_without_a_key_it_says_only_the_free_probes_ran(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    async with network("demo") as net:
        env = env_for(net, tmp_path)
        del env["LIBERTAI_API_KEY"]
        _environ(monkeypatch, env)
        code = await asyncio.to_thread(main, ["probe-once"])
    err = capsys.readouterr().err
    assert code == 0, err  # every model has a healthy host: the exit status is unchanged
    assert "no API key: only the free health probes ran" in err


async def test_hosts_outside_the_allow_list_are_explained_by_the_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    async with network("demo") as net:
        _environ(monkeypatch, env_for(net, tmp_path, ALLOWED_HOSTS="https://*.libertai.io"))
        code = await asyncio.to_thread(main, ["probe-once"])
    said = capsys.readouterr()
    assert code == 1  # no model has a healthy host
    assert "untrusted" in said.out
    note = [line for line in said.err.splitlines() if "untrusted" in line]
    assert len(note) == 1
    assert "allowed_hosts" in note[0] and "LIBERTAI_MONITOR_ALLOWED_HOSTS" in note[0]
