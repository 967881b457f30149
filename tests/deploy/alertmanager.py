"""Helpers for the Alertmanager tests: Debian's prometheus-alertmanager started as docker-compose.yml's
`alertmanager` service starts it (render.sh, then Alertmanager on the rendered routing file), with the
container's paths mapped to a test directory, and a webhook receiver of the test on loopback that
also answers as Telegram's Bot API."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import subprocess
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from aiohttp import web

from tests.deploy.prom import REPO, _stop, free_port, tool

AM_DIR = REPO / "grafana" / "alertmanager"
SHIPPED_ROUTING = AM_DIR / "alertmanager.yml"
COMPOSE = REPO / "docker-compose.yml"
# Made-up values for the placeholders of the shipped routing file.
SAMPLE_ENV = {
    "TELEGRAM_BOT_TOKEN": "123456789:AAtest-token",
    "TELEGRAM_CHAT_ID": "-1001234567890",
    "ALERT_WEBHOOK_URL": "http://127.0.0.1:9/alerts",
}


# Debian's build reads its default notification templates from here rather than from the binary, so
# its package must be installed (`apt-get install prometheus-alertmanager`), not only unpacked.
DEBIAN_TEMPLATES = Path("/usr/share/prometheus/alertmanager/default.tmpl")


def alertmanager_binary() -> str:
    """Debian's prometheus-alertmanager, installed; or an upstream build, called alertmanager."""
    upstream = shutil.which("alertmanager")
    if upstream is not None and shutil.which("prometheus-alertmanager") is None:
        return upstream
    found = tool("prometheus-alertmanager", "prometheus-alertmanager")
    if not DEBIAN_TEMPLATES.is_file():
        why = f"{found} needs {DEBIAN_TEMPLATES}: apt-get install prometheus-alertmanager"
        if os.environ.get("CI"):
            pytest.fail(why)
        pytest.skip(why)
    return found


def compose_service() -> dict[str, Any]:
    service: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())["services"]["alertmanager"]
    return service


def replayed_command(config_dir: Path, workdir: Path, binary: str) -> list[str]:
    """The compose service's entrypoint and command, with the container's paths mapped: its mount of
    grafana/alertmanager to `config_dir`, its /tmp and storage volume into `workdir`, the image's
    binary to `binary`."""
    service = compose_service()
    paths = {
        "/etc/alertmanager": str(config_dir),
        "/tmp": str(workdir),
        "/alertmanager": str(workdir / "data"),
        "/bin/alertmanager": binary,
    }

    def mapped(value: str) -> str:
        for inside, outside in paths.items():
            if value == inside or value.startswith(inside + "/"):
                return outside + value[len(inside) :]
        return value

    args = []
    for arg in [*service["entrypoint"], *service["command"]]:
        flag, eq, value = arg.partition("=")
        args.append(f"{flag}={mapped(value)}" if eq and flag.startswith("--") else mapped(arg))
    return args


def fast_routing(routing_text: str, wait: str = "1s") -> str:
    """The routing file with group_wait and group_interval set to `wait` (and repeat_interval far
    away), so a test sees the first message and the resolution within seconds."""
    new = routing_text
    for key, value in (("group_wait", wait), ("group_interval", wait), ("repeat_interval", "1h")):
        new, n = re.subn(rf"(?m)^(\s*{key}:\s*)\S+", rf"\g<1>{value}", new)
        assert n == 1, f"one {key} in the shipped routing file"
    return new


def with_telegram_api(routing_text: str, api_url: str) -> str:
    """The routing file with the Telegram receiver sending to `api_url` instead of Telegram."""
    new, n = re.subn(r"(?m)^(\s*)- bot_token:(.*)$", rf'\g<0>\n\g<1>  api_url: "{api_url}"', routing_text)
    assert n == 1, "one telegram_configs entry in the shipped routing file"
    return new


@dataclass
class Alertmanager:
    address: str  # host:port, as Prometheus's `alerting:` names it
    process: subprocess.Popen[bytes]
    log: Path
    rendered: Path

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


@contextlib.asynccontextmanager
async def running_alertmanager(
    workdir: Path, routing_text: str, env: dict[str, str], start_timeout: float = 20.0
) -> AsyncIterator[Alertmanager]:
    """Alertmanager started as the compose service starts it, on a loopback port, with `routing_text`
    as grafana/alertmanager/alertmanager.yml and `env` for its placeholders. Stopped on exit."""
    config_dir = workdir / "etc"
    shutil.copytree(AM_DIR, config_dir)
    (config_dir / "alertmanager.yml").write_text(routing_text)
    command = replayed_command(config_dir, workdir, alertmanager_binary())
    rendered = Path(next(a for a in command if a.startswith("--config.file=")).partition("=")[2])
    log = workdir / "alertmanager.log"
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:
        for attempt in range(3):  # the free port may be taken between choosing and binding it
            port = free_port()
            with log.open("ab") as out:
                proc = subprocess.Popen(
                    [*command, f"--web.listen-address=127.0.0.1:{port}"],
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=out,
                    cwd=workdir,
                    env={**os.environ, **env},
                )
            am = Alertmanager(f"127.0.0.1:{port}", proc, log, rendered)
            try:
                if await _ready(http, am, start_timeout):
                    break
            except BaseException:
                await _stop(proc)
                raise
            await _stop(proc)
            if attempt == 2 or "address already in use" not in am.log_tail():
                raise AssertionError(f"Alertmanager did not start; its log:\n{am.log_tail()}")
        try:
            yield am
        finally:
            await _stop(proc)


async def _ready(http: aiohttp.ClientSession, am: Alertmanager, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if am.process.poll() is not None:
            return False
        with contextlib.suppress(aiohttp.ClientError, TimeoutError):
            async with http.get(f"http://{am.address}/-/ready") as resp:
                if resp.status == 200:
                    return True
        await asyncio.sleep(0.1)
    return False


@dataclass
class Receiver:
    """What Alertmanager sent: webhook payloads, and Telegram sendMessage calls (token, body)."""

    url: str
    payloads: list[dict[str, Any]] = field(default_factory=list)
    telegram: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def alerts(self, since: int = 0) -> list[dict[str, Any]]:
        """Every alert of every payload after the first `since` payloads."""
        return [alert for payload in self.payloads[since:] for alert in payload.get("alerts", [])]


@contextlib.asynccontextmanager
async def receiver() -> AsyncIterator[Receiver]:
    """An HTTP server on loopback: POST /alerts is the webhook; POST /telegram/bot{token}/sendMessage
    answers as Telegram's Bot API does."""
    got = Receiver(url="")

    async def webhook(request: web.Request) -> web.Response:
        got.payloads.append(await request.json())
        return web.Response(text="ok")

    async def telegram(request: web.Request) -> web.Response:
        if request.content_type == "application/json":
            body: dict[str, Any] = await request.json()
        else:
            body = {k: str(v) for k, v in (await request.post()).items()}
        got.telegram.append((request.match_info["token"], body))
        chat = {"id": int(str(body.get("chat_id", 0))), "type": "group"}
        return web.json_response({"ok": True, "result": {"message_id": len(got.telegram), "chat": chat}})

    app = web.Application()
    app.router.add_post("/alerts", webhook)
    app.router.add_post("/telegram/bot{token}/sendMessage", telegram)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    got.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        yield got
    finally:
        await runner.cleanup()
