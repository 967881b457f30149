"""Helpers for the Prometheus tests: find Debian's prometheus/promtool, derive fast local copies of
the shipped grafana/prometheus files, and run a real Prometheus on a loopback port."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

REPO = Path(__file__).resolve().parents[2]
PROM_DIR = REPO / "grafana" / "prometheus"
SHIPPED_CONFIG = PROM_DIR / "prometheus.yml"
SHIPPED_RULES = PROM_DIR / "alerts.yml"
RULES_TEST = PROM_DIR / "alerts_test.yml"
SHIPPED_SLO_RULES = PROM_DIR / "slo.yml"
SLO_RULES_TEST = PROM_DIR / "slo_test.yml"
SHIPPED_TARGET = '["libertai-monitor:8787"]'
SHIPPED_ALERTMANAGER = '["alertmanager:9093"]'


def tool(name: str, package: str = "prometheus") -> str:
    """Path of a binary of Debian's `package` (`prometheus`, `promtool`; `amtool` of
    prometheus-alertmanager): on PATH, else unpacked by .ci/run into .ci-tools/.
    Missing: a failure in CI (where .ci/run provides it), a skip elsewhere."""
    found = shutil.which(name)
    if found is None:
        local = REPO / ".ci-tools" / "root" / "usr" / "bin" / name
        if local.is_file() and os.access(local, os.X_OK):
            found = str(local)
    if found is None:
        if os.environ.get("CI"):
            pytest.fail(f"{name} missing: .ci/run unpacks Debian's {package} package into .ci-tools/")
        pytest.skip(f"{name} not installed (Debian package {package})")
    return found


def alert_names(rules_text: str) -> list[str]:
    return re.findall(r"(?m)^\s*- alert:\s*(\S+)\s*$", rules_text)


def shorten_for(rules_text: str, to: str = "2s") -> str:
    """The rules with every `for:` set to `to`, so that they fire within seconds."""
    new, n = re.subn(r"(?m)^(\s+for:\s*)\d+[smhdwy](\s*(#.*)?)$", rf"\g<1>{to}\g<2>", rules_text)
    names = alert_names(rules_text)
    assert n == len(names), f"{n} `for:` lines for {len(names)} alerts: keep one `for:` line per rule"
    return new


def local_config(
    config_text: str, target: str, interval: str = "1s", *, alertmanager: str | None = None
) -> str:
    """The shipped config scraping `target` (host:port) with every interval set to `interval`, and
    sending alerts to `alertmanager` (host:port) when given."""
    new, n = re.subn(re.escape(f"targets: {SHIPPED_TARGET}"), f'targets: ["{target}"]', config_text)
    assert n == 1, "the shipped config has one target, libertai-monitor:8787"
    if alertmanager is not None:
        new, n = re.subn(re.escape(f"targets: {SHIPPED_ALERTMANAGER}"), f'targets: ["{alertmanager}"]', new)
        assert n == 1, "the shipped config sends alerts to alertmanager:9093"
    new, n = re.subn(
        r"(?m)^(\s*(?:scrape_interval|evaluation_interval|scrape_timeout):\s*)\S+", rf"\g<1>{interval}", new
    )
    assert n >= 2, "global scrape_interval and evaluation_interval"
    return new


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Prometheus:
    url: str
    process: subprocess.Popen[bytes]
    log: Path
    http: aiohttp.ClientSession

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    async def api(self, path: str, **params: str) -> Any:
        async with self.http.get(self.url + path, params=params) as resp:
            body = await resp.json(content_type=None)
        assert isinstance(body, dict) and "status" in body, f"{path}: {body!r}"
        return body

    async def query(self, expr: str) -> dict[str, Any]:
        """The whole answer of an instant query: status, data (resultType, result) or error."""
        body: dict[str, Any] = await self.api("/api/v1/query", query=expr)
        return body

    async def result(self, expr: str) -> list[dict[str, Any]]:
        body = await self.query(expr)
        assert body["status"] == "success", f"{expr}: {body.get('errorType')}: {body.get('error')}"
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    async def alerts(self) -> list[dict[str, Any]]:
        """Active (pending or firing) alerts."""
        alerts: list[dict[str, Any]] = (await self.api("/api/v1/alerts"))["data"]["alerts"]
        return alerts

    async def alerting_rules(self) -> list[dict[str, Any]]:
        groups = (await self.api("/api/v1/rules", type="alert"))["data"]["groups"]
        return [rule for group in groups for rule in group["rules"]]


@contextlib.asynccontextmanager
async def running_prometheus(
    workdir: Path,
    config_text: str,
    rules_text: str,
    *,
    slo_rules_text: str | None = None,
    start_timeout: float = 20.0,
) -> AsyncIterator[Prometheus]:
    """A real Prometheus on a loopback port with `config_text` and `rules_text` (as alerts.yml beside
    it, and `slo_rules_text` as slo.yml, the shipped one by default); its log goes to
    workdir/prometheus.log. Stopped (SIGTERM, then SIGKILL) on exit."""
    binary = tool("prometheus")
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "prometheus.yml").write_text(config_text)
    (workdir / "alerts.yml").write_text(rules_text)
    (workdir / "slo.yml").write_text(
        SHIPPED_SLO_RULES.read_text() if slo_rules_text is None else slo_rules_text
    )
    log = workdir / "prometheus.log"
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
        for attempt in range(3):  # the free port may be taken between choosing and binding it
            port = free_port()
            with log.open("ab") as out:
                proc = subprocess.Popen(
                    [
                        binary,
                        f"--config.file={workdir / 'prometheus.yml'}",
                        f"--storage.tsdb.path={workdir / 'data'}",
                        f"--web.listen-address=127.0.0.1:{port}",
                        "--log.level=info",
                    ],
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=out,
                    cwd=workdir,
                )
            prom = Prometheus(f"http://127.0.0.1:{port}", proc, log, http)
            try:
                if await _ready(prom, start_timeout):
                    break
            except BaseException:
                await _stop(proc)
                raise
            await _stop(proc)
            if attempt == 2 or "address already in use" not in prom.log_tail():
                raise AssertionError(f"Prometheus did not start; its log:\n{prom.log_tail()}")
        try:
            yield prom
        finally:
            await _stop(proc)


async def _ready(prom: Prometheus, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if prom.process.poll() is not None:
            return False
        with contextlib.suppress(aiohttp.ClientError, TimeoutError):
            async with prom.http.get(prom.url + "/-/ready") as resp:
                if resp.status == 200:
                    return True
        await asyncio.sleep(0.1)
    return False


async def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            await asyncio.to_thread(proc.wait, 15)
        except subprocess.TimeoutExpired:
            proc.kill()
            await asyncio.to_thread(proc.wait)
