"""The real service process (`python -m monitor run`) against hostile gateways, hosts and clients
: every case ends in a clear outcome, with bounded time and request counts.

Cases: a listing with ids that are not printable Unicode, braces, slashes and percent signs; a
listing of 100,000 servers with /healthz asked meanwhile; hostile history queries; /metrics read
throughout; foreign spellings of a host that must never get the key (a trap host, and the
simulator's `saw_key`); malformed HTTP requests. The stalled-client stop is test_faults_stop.py.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest

from tests.faults.hostile import Gateway, KeyTrap, big_listing, serve
from tests.service.support import KEY, env_for, eventually, network
from tests.service.test_process import Service

pytestmark = pytest.mark.slow

# Docker's health check gives /healthz 3 s; it answers in milliseconds when the loop is free.
HEALTHZ_BOUND_S = 3.0
AWKWARD_IDS = ["{braces}", "org/model", "100%", "a}b{c", "q?x=1"]
UNPRINTABLE_IDS = ["bad-\ud800-id", "ctl-\x07-id", "c1-\x85-id", "fmt-\u200b-id"]


def _env(gateway_url: str, tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {
        "LIBERTAI_MONITOR_GATEWAY_URL": gateway_url,
        "LIBERTAI_MONITOR_ALLOWED_HOSTS": "http://127.0.0.1:*,https://127.0.0.1:*",
        "LIBERTAI_MONITOR_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'monitor.db'}",
        "LIBERTAI_MONITOR_DISCOVERY_INTERVAL": "1",
        "LIBERTAI_MONITOR_PROBE_INTERVAL": "1",
        "LIBERTAI_MONITOR_PROBE_TIMEOUT": "1",
        "LIBERTAI_MONITOR_LOG_FORMAT": "json",
        "LIBERTAI_API_KEY": KEY,
    }
    env.update({f"LIBERTAI_MONITOR_{k}": v for k, v in extra.items()})
    return env


@asynccontextmanager
async def _service(
    env: dict[str, str], tmp_path: Path, http: aiohttp.ClientSession
) -> AsyncIterator[Service]:
    svc = Service(env, tmp_path / "service.log")
    svc.start()
    try:
        await svc.wait_ready(http)
        yield svc
    finally:
        code = svc.stop() if svc.proc is not None and svc.proc.poll() is None else None
        assert code in (0, None), _log_tail(svc)


def _log_tail(svc: Service) -> str:
    return svc.log.read_text(errors="replace")[-3000:]


def _log_lines(svc: Service) -> list[dict[str, Any]]:
    lines = []
    for raw in svc.log.read_text(errors="replace").splitlines():
        try:
            lines.append(json.loads(raw))
        except ValueError:
            lines.append({"event": raw, "level": "raw"})
    return lines


def _no_traceback(svc: Service) -> None:
    text = svc.log.read_text(errors="replace")
    assert "Traceback" not in text, text[-3000:]
    errors = [e for e in _log_lines(svc) if e.get("level") in ("error", "critical")]
    assert not errors, errors[:5]


async def _status(http: aiohttp.ClientSession, url: str) -> int:
    async with http.get(url) as r:
        await r.read()
        return r.status


async def test_a_listing_of_hostile_ids_lists_the_printable_ones_and_reaches_them(
    tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    gateway = Gateway()
    listing: dict[str, Any] = {i: {"servers": ["http://127.0.0.1:9"]} for i in AWKWARD_IDS + UNPRINTABLE_IDS}
    gateway.set_listing(listing)
    runner, port = await serve(gateway.app())
    try:
        async with _service(_env(f"http://127.0.0.1:{port}", tmp_path), tmp_path, http) as svc:

            async def listed() -> Any:
                async with http.get(svc.url + "/v1/best") as r:
                    return set((await r.json())["models"]) if r.status == 200 else None

            models = await eventually(listed, timeout=30)
            assert models == set(AWKWARD_IDS)  # the unprintable ones are refused at the edge
            for model in AWKWARD_IDS:
                assert await _status(http, f"{svc.url}/v1/best/{quote(model, safe='')}") == 200, model
                assert await _status(http, f"{svc.url}/status/{quote(model, safe='')}") == 200, model
            assert await _status(http, svc.url + "/metrics") == 200
        _no_traceback(svc)
    finally:
        await runner.cleanup()


async def test_hostile_history_queries_are_answered_200_or_422_never_500(
    tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    gateway = Gateway()
    gateway.set_listing({"hermes": {"servers": ["http://127.0.0.1:9"]}})
    runner, port = await serve(gateway.app())
    queries = [
        "since=nan", "until=nan", "since=1e11&until=1e12&step=1e9", "since=-1e11", "since=1e308",
        "since=inf", "step=-1", "step=1e308", "since=0&step=1", "host=%00", "since=%ff%fe",
        "since=1h&step=60", "",
    ]  # fmt: skip
    try:
        async with _service(_env(f"http://127.0.0.1:{port}", tmp_path), tmp_path, http) as svc:
            await eventually(lambda: _is(200, _status(http, svc.url + "/v1/best/hermes")), timeout=30)
            for q in queries:
                async with http.get(f"{svc.url}/v1/history/hermes?{q}") as r:
                    body = await r.json()
                    assert r.status in (200, 422), (q, r.status, body)
                    assert r.status == 200 or body["detail"], q
            assert await _status(http, svc.url + "/metrics") == 200
        _no_traceback(svc)
    finally:
        await runner.cleanup()


async def _is(expected: int, status: Any) -> bool:
    return bool(await status == expected)


async def test_a_listing_of_100000_servers_keeps_healthz_answering(
    tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    servers = 100_000
    gateway = Gateway()
    gateway.set_listing(big_listing(servers, 10))
    runner, port = await serve(gateway.app())
    slowest = 0.0
    asked = 0
    try:
        env = _env(f"http://127.0.0.1:{port}", tmp_path, DISCOVERY_INTERVAL="5")
        async with _service(env, tmp_path, http) as svc:

            async def known() -> bool:
                nonlocal slowest, asked
                started = time.monotonic()
                async with http.get(svc.url + "/healthz", timeout=aiohttp.ClientTimeout(total=10)) as r:
                    assert r.status == 200
                slowest, asked = max(slowest, time.monotonic() - started), asked + 1
                async with http.get(svc.url + "/v1/best") as r:
                    body = await r.json() if r.status == 200 else {"models": {}}
                return bool(sum(m["known_hosts"] for m in body["models"].values()) >= servers)

            await eventually(known, timeout=120, every=0.2)
            assert await _status(http, svc.url + "/metrics") == 200
        print(f"slowest /healthz {slowest * 1000:.0f} ms over {asked} requests")
        assert slowest < HEALTHZ_BOUND_S, f"/healthz took {slowest:.2f} s (asked {asked} times)"
    finally:
        await runner.cleanup()


def _loopback_alias_available() -> bool:
    try:
        with socket.socket() as s:
            s.bind(("127.0.0.2", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _loopback_alias_available(), reason="127.0.0.2 cannot be bound here")
async def test_foreign_spellings_of_a_host_never_get_the_key(
    tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    trap = KeyTrap()
    trap_runner, trap_port = await serve(trap.app(), host="127.0.0.2")
    spellings = [
        f"http://127.0.0.2:{trap_port}",
        f"http://2130706434:{trap_port}",
        f"http://0x7f000002:{trap_port}",
        f"http://127.0.0.2.:{trap_port}",
        f"http://[::ffff:127.0.0.2]:{trap_port}",
        f"HTTP://127.0.0.2:{trap_port}/v1/",
        f"http://user:pw@127.0.0.2:{trap_port}",
        f"http://127.0.0.1@127.0.0.2:{trap_port}",
    ]
    gateway = Gateway()
    gateway.set_listing({"trap-model": {"servers": spellings}})
    runner, port = await serve(gateway.app())
    try:
        async with _service(_env(f"http://127.0.0.1:{port}", tmp_path), tmp_path, http):
            await eventually(lambda: gateway.requests.get("models", 0) >= 3, timeout=30)
            await asyncio.sleep(2.5)  # more than two probe intervals
        assert trap.with_key == 0, f"{trap.with_key} of {trap.requests} requests carried a key"
    finally:
        await runner.cleanup()
        await trap_runner.cleanup()


async def test_foreign_hosts_of_the_simulator_never_see_the_key(
    tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    async with network("chaos") as net, _service(env_for(net, tmp_path), tmp_path, http):
        await eventually(lambda: sum(h["saw_key"] for h in net.ground_truth()["hosts"]) >= 3, timeout=30)
        await asyncio.sleep(2)
        hosts = {h["name"]: h for h in net.ground_truth()["hosts"]}
    assert hosts["localhost"]["saw_key"] is False  # outside the allow-list
    assert hosts["sink"]["saw_key"] is False  # reached only by following a redirect


MALFORMED = [
    b"GARBAGE\r\n\r\n",
    b"GET / HTTP/9.9\r\n\r\n",
    b"GET /healthz HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n",
    b"GET /healthz HTTP/1.1\r\nHost: x\r\nX: " + b"a" * 20000 + b"\r\n\r\n",
    b"GET /\xff\xfe HTTP/1.1\r\nHost: x\r\n\r\n",
    b"POST /v1/best HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    b"POST /v1/best HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
    b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",  # a TLS hello on the plain port
    b"GET /v1/best/%ED%A0%80 HTTP/1.1\r\nHost: x\r\n\r\n",
]


def _send_raw(url: str, payload: bytes) -> bytes:
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(payload)
        try:
            return sock.recv(4096)
        except (TimeoutError, ConnectionResetError):
            return b""


async def test_malformed_requests_get_an_answer_and_leave_no_traceback(
    tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    async with network("demo") as net, _service(env_for(net, tmp_path), tmp_path, http) as svc:
        for payload in MALFORMED:
            answer = await asyncio.to_thread(_send_raw, svc.url, payload)
            assert not answer or answer.startswith(b"HTTP/1."), answer[:100]
        assert await _status(http, svc.url + "/healthz") == 200
        assert await _status(http, svc.url + "/metrics") == 200
    _no_traceback(svc)
