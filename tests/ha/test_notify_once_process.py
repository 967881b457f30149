"""Process level, on a real PostgreSQL server and the simulator: two monitors of one vantage with
notifications to a webhook receiver of the test. The leader records "host down" pending but cannot
deliver it (its URL fails: /a answers 500), and is killed; the follower leads, sends it, and then the host's
recovery: exactly one message of each."""

from __future__ import annotations

import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from tests.ha.monitors import start_monitor, wait_role
from tests.pg import PgServer
from tests.service.support import eventually, network
from tests.service.test_process import Service

pytest.importorskip("apprise")
pytestmark = [pytest.mark.slow, pytest.mark.postgresql]

MODEL, HOST = "qwen3-coder-next", "qwen-a"


@dataclass
class Receiver:
    """Messages by path: /a always answers 500 (the leader's channel is failing), the others 200."""

    messages: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    port: int = 0

    async def handle(self, request: web.Request) -> web.Response:
        self.messages.setdefault(request.path, []).append(await request.json())
        return web.Response(status=500 if request.path == "/a" else 200)

    def titles(self, path: str, title: str) -> int:
        return sum(m["title"] == title for m in self.messages.get(path, []))


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = Receiver()
    app = web.Application()
    app.router.add_post("/{tail:.*}", r.handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    assert server.port is not None
    r.port = server.port
    yield r
    await server.close()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
        yield session


async def test_one_down_and_one_up_message_when_the_leader_dies_before_announcing(
    pg_url: str, pg_server: PgServer, tmp_path: Path, receiver: Receiver, http: aiohttp.ClientSession
) -> None:
    database = pg_url.rsplit("/", 1)[1]
    hook = f"json://127.0.0.1:{receiver.port}"
    async with network("demo") as net:
        started: list[Service] = []
        try:
            a = start_monitor(net, tmp_path, "a", pg_url, NOTIFY_URLS=f"{hook}/a", NOTIFY_MIN_INTERVAL="1")
            started.append(a)
            await wait_role(http, a, "leader")
            b = start_monitor(net, tmp_path, "b", pg_url, NOTIFY_URLS=f"{hook}/b", NOTIFY_MIN_INTERVAL="1")
            started.append(b)
            await wait_role(http, b, "follower")
            down, up = (
                f"Host down: {MODEL} {net.host_url(HOST)}",
                f"Host up again: {MODEL} {net.host_url(HOST)}",
            )

            net.set_host(HOST, down=True)
            pending = f"SELECT count(*) FROM notifications WHERE state = 'pending' AND title = '{down}'"
            await eventually(lambda: pg_server.sql(database, pending) == "1", every=0.05)
            a.stop(signal.SIGKILL)
            await eventually(lambda: receiver.titles("/b", down) == 1, timeout=20, every=0.05)
            net.set_host(HOST, down=False)
            await eventually(lambda: receiver.titles("/b", up) == 1, timeout=10, every=0.05)
            assert receiver.titles("/b", down) == 1
        finally:
            for svc in started:
                if svc.proc is not None and svc.proc.poll() is None:
                    svc.stop()
