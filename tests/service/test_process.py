"""The service as a user runs it: a separate process, killed, restarted, searched for the key."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.service.support import KEY, env_for, eventually, get_json, network

pytestmark = pytest.mark.slow  # the service as a child process


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Service:
    """`python -m monitor run` in a child process, its log captured to a file."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, **env, "LIBERTAI_MONITOR_LISTEN": f"127.0.0.1:{self.port}"}
        self.env.pop("LIBERTAI_MONITOR_CONFIG", None)
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "monitor", "run"], env=self.env, stdout=out, stderr=out
            )

    async def wait_ready(self, http: aiohttp.ClientSession) -> None:
        async def up() -> bool:
            try:
                async with http.get(self.url + "/healthz") as r:
                    return r.status == 200
            except aiohttp.ClientError:
                return False

        await eventually(up, timeout=30)

    def stop(self, sig: int = signal.SIGTERM) -> int:
        assert self.proc is not None
        self.proc.send_signal(sig)
        return self.proc.wait(timeout=20)


async def _best(http: aiohttp.ClientSession, url: str) -> dict[str, Any]:
    return {m: v["host"] for m, v in (await get_json(http, url + "/v1/best"))["models"].items()}


async def test_restart_after_sigkill_keeps_history_and_best_hosts(
    tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    async with network("demo") as net:
        svc = Service(env_for(net, tmp_path), tmp_path / "service.log")
        svc.start()
        try:
            await svc.wait_ready(http)

            # The simulator names the right host for some models; wait until the service agrees.
            # Models with a flapping host are left out: their answer may change in the last second
            # before the kill, which SIGKILL rightly loses.
            truth = net.ground_truth()
            moving = {m for h in truth["hosts"] if h["behaviour"].get("flap") for m in h["expected"]}
            expected = {m: h for m, h in truth["expected_best"].items() if h and m not in moving}
            assert len(expected) >= 3

            async def settled() -> bool:
                best = await _best(http, svc.url)
                return all(best.get(m) == h for m, h in expected.items())

            await eventually(settled, timeout=30)
            await asyncio.sleep(2.5)  # more than one writer flush, so history is on disk
        finally:
            svc.stop(signal.SIGKILL)
        net.set_gateway(fault="hang")
        svc.start()
        try:
            await svc.wait_ready(http)
            after = await _best(http, svc.url)
            assert {m: after.get(m) for m in expected} == expected
            hosts = (await get_json(http, svc.url + "/v1/hosts"))["hosts"]
            assert sum(h["samples"] for h in hosts) > 0
        finally:
            assert svc.stop() == 0  # SIGTERM: a clean stop


async def test_key_appears_in_no_log_database_metric_or_answer(
    tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    async with network("chaos") as net:
        svc = Service(env_for(net, tmp_path, LOG_LEVEL="debug"), tmp_path / "service.log")
        svc.start()
        try:
            await svc.wait_ready(http)
            await eventually(lambda: _probed_enough(net.ground_truth()), timeout=30)
            await asyncio.sleep(2.5)
            bodies = []
            best = await get_json(http, svc.url + "/v1/best")
            for path in ["/v1/best", "/v1/hosts", "/libertai/models", "/metrics", "/healthz", "/readyz"]:
                async with http.get(svc.url + path) as r:
                    bodies.append(await r.read())
            for model in best["models"]:
                for path in (f"/v1/best/{model}", f"/v1/history/{model}?since=1h&step=60"):
                    async with http.get(svc.url + path) as r:
                        bodies.append(await r.read())
        finally:
            assert svc.stop() == 0
        secret = KEY.encode()
        assert all(secret not in b for b in bodies)
        log = (tmp_path / "service.log").read_bytes()
        assert b"host down" in log  # the log did record the failures...
        assert secret not in log  # ...without the key
        db_files = list(tmp_path.glob("monitor.db*"))
        assert db_files
        assert all(secret not in f.read_bytes() for f in db_files)


def _probed_enough(truth: dict[str, Any]) -> bool:
    return sum(1 for h in truth["hosts"] if h["saw_key"]) >= 3


def _installed_command() -> str | None:
    here = Path(sys.executable).parent / "libertai-monitor"
    return str(here) if here.exists() else shutil.which("libertai-monitor")


async def test_installed_demo_command_serves_best_hosts(tmp_path: Path, http: aiohttp.ClientSession) -> None:
    """`libertai-monitor demo`, as installed (run from an empty directory, not the source tree)."""
    command = _installed_command()
    if command is None:
        pytest.fail("libertai-monitor is not installed next to this Python: pip install '.[test]'")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIBERTAI_")}
    env["LIBERTAI_MONITOR_LISTEN"] = f"127.0.0.1:{port}"
    env.pop("PYTHONPATH", None)
    proc = subprocess.Popen(
        [command, "demo"], cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        url = f"http://127.0.0.1:{port}"

        async def has_best() -> bool:
            try:
                best = await _best(http, url)
            except (aiohttp.ClientError, ValueError):
                return False
            return any(best.values())

        await eventually(has_best, timeout=40)
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err.decode()[-2000:]
    assert f"http://127.0.0.1:{port}/v1/best" in out.decode()
    assert not (tmp_path / "libertai-monitor-demo.db").exists()  # a temporary database unless --keep
