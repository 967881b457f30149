"""The one-shot commands: probe-once and db upgrade, run as a user runs them."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import sys
from pathlib import Path

import pytest

from monitor.sim import SimNetwork, load_scenario
from tests.service.support import env_for, network

pytestmark = pytest.mark.slow  # each command in its own process

NO_HEALTHY_HOST = """
name = "one-dead-model"
[[models]]
id = "alive"
[[models]]
id = "dead"
[[hosts]]
name = "ok-host"
models = ["alive"]
[[hosts]]
name = "dead-host"
models = ["dead"]
errors = { 503 = 1.0 }
"""


async def _run(*args: str, env: dict[str, str]) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "monitor",
        *args,
        env={**os.environ, **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_probe_once_prints_a_table_and_exits_0_when_every_model_has_a_healthy_host(
    tmp_path: Path,
) -> None:
    async with network("demo") as net:
        code, out, err = await _run("probe-once", env=env_for(net, tmp_path))
    assert code == 0, err[-2000:]
    lines = out.splitlines()
    assert lines[0].split() == ["MODEL", "HOST", "STATE", "REASON", "TTFT", "p50", "ms", "BEST"]
    rows = [line.split() for line in lines[1:]]
    assert {r[0] for r in rows} >= {"hermes-3-8b-tee", "hermes-3-8b-tee-thinking", "z-image-turbo"}
    # A failure is confirmed by a second probe before it counts, as in the service.
    assert any(r[0] == "gemma-3-27b" and r[2:4] == ["down", "key_rejected"] for r in rows), out


async def test_probe_once_exits_1_when_a_model_has_no_healthy_host(tmp_path: Path) -> None:
    scenario_file = tmp_path / "s.toml"
    scenario_file.write_text(NO_HEALTHY_HOST)
    async with SimNetwork(load_scenario(str(scenario_file)), seed=1) as net:
        code, _, err = await _run("probe-once", env=env_for(net, tmp_path))
    assert code == 1
    assert "no healthy host for: dead" in err


async def test_db_upgrade_creates_the_schema_and_is_idempotent(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    url = f"sqlite+aiosqlite:///{db}"
    said = []
    for _ in range(2):
        code, out, err = await _run("db", "upgrade", "--database-url", url, env={})
        assert code == 0, err
        said.append(out)
    assert "upgraded from no schema to revision" in said[0]
    assert "already at the latest schema" in said[1]
    tables = {r[0] for r in sqlite3.connect(db).execute("select name from sqlite_master where type='table'")}
    assert {"probe_results", "hosts", "models", "alembic_version"} <= tables


async def test_unusable_database_exits_2_with_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    url = f"sqlite+aiosqlite:///{blocker}/m.db"
    code, _, err = await _run("db", "upgrade", "--database-url", url, env={})
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and err.startswith("libertai-monitor: database ")


async def test_port_in_use_exits_2_with_one_line(tmp_path: Path) -> None:
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        env = {
            "LIBERTAI_MONITOR_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'm.db'}",
            "LIBERTAI_MONITOR_GATEWAY_URL": "http://127.0.0.1:9",
        }
        code, _, err = await _run("run", "--listen", f"127.0.0.1:{port}", env=env)
    finally:
        server.close()
    assert code == 2
    assert f"cannot listen on 127.0.0.1:{port}" in err.strip().splitlines()[-1]


@pytest.mark.subprocess
async def test_probe_once_without_a_key_says_only_the_free_probes_ran(tmp_path: Path) -> None:
    async with network("demo") as net:
        env = env_for(net, tmp_path)
        env["LIBERTAI_API_KEY"] = ""
        code, _, err = await _run("probe-once", env=env)
    assert code == 0, err[-2000:]  # every model has a healthy host: the exit status is unchanged
    assert "no API key: only the free health probes ran" in err


@pytest.mark.subprocess
async def test_probe_once_names_the_setting_that_left_hosts_untrusted(tmp_path: Path) -> None:
    async with network("demo") as net:
        code, out, err = await _run(
            "probe-once", env=env_for(net, tmp_path, ALLOWED_HOSTS="https://*.libertai.io")
        )
    assert code == 1  # no model has a healthy host
    assert "untrusted" in out
    note = [line for line in err.splitlines() if "untrusted" in line]
    assert len(note) == 1
    assert "allowed_hosts" in note[0] and "LIBERTAI_MONITOR_ALLOWED_HOSTS" in note[0]
