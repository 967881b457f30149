"""Host certificates through the whole service against the simulated network: each HTTPS host's
certificate in `/v1/hosts` and /metrics, a changed one recorded (log line and incident, once),
and with `pin_certificates` no key for a host whose certificate changed until it is accepted."""

from __future__ import annotations

import asyncio
import hashlib
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from structlog.testing import capture_logs

from monitor.cli import main
from monitor.parts import certs
from monitor.server import serving
from monitor.sim import SimNetwork
from tests.service.support import eventually, get_json, network, settings_for

pytestmark = pytest.mark.e2e  # the service against the simulated network

MODEL = "scale-model-0"


def _sha256(pem: bytes) -> str:
    return hashlib.sha256(ssl.PEM_cert_to_DER_cert(pem.decode())).hexdigest()


@pytest.fixture(autouse=True)
def _quick_refresh(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # An accepted certificate reaches the service within a second rather than ten.
    monkeypatch.setattr(certs, "REFRESH_EVERY_S", 0.3)
    yield


async def _entry(http: aiohttp.ClientSession, url: str, host: str) -> dict[str, Any]:
    hosts = (await get_json(http, url + "/v1/hosts"))["hosts"]
    entry: dict[str, Any] = next((h for h in hosts if h["url"] == host), {})
    return entry


def _keyed(net: SimNetwork, name: str) -> int:
    host = next(h for h in net.ground_truth()["hosts"] if h["name"] == name)
    return sum(c["with_key"] for c in host["requests"].values())


def _unkeyed(net: SimNetwork, name: str) -> int:
    host = next(h for h in net.ground_truth()["hosts"] if h["name"] == name)
    return sum(c["without_key"] for c in host["requests"].values())


async def test_each_https_host_shows_its_certificate_and_expiry(
    tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    async with (
        network("scale", hosts=2, models=1, tls=True) as net,
        serving(settings_for(net, tmp_path)) as svc,
    ):
        host = net.host_url("h0")

        tls = await eventually(lambda: _tls(http, svc.url, host))
        assert tls["sha256"] == _sha256(net.tls_cert_pem)
        assert tls["not_after"].endswith("Z") and tls["changed_at"] is None
        assert (tls["pinned"], tls["trusted"]) == (None, True)
        async with http.get(svc.url + "/metrics") as resp:
            text = await resp.text()
        assert f'libertai_monitor_tls_not_after_seconds{{host="{host}"}}' in text


async def test_a_changed_certificate_is_logged_once_and_listed_as_an_incident(
    tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    with capture_logs() as logs:
        async with (
            network("scale", hosts=2, models=1, tls=True) as net,
            serving(settings_for(net, tmp_path)) as svc,
        ):
            host = net.host_url("h0")
            first = await eventually(lambda: _tls(http, svc.url, host))
            new = _sha256(net.renew_cert("h0"))

            async def changed() -> Any:
                tls = await _tls(http, svc.url, host)
                return tls is not None and tls["sha256"] == new and tls

            tls = await eventually(changed)
            assert tls["changed_at"] is not None and tls["trusted"]
            assert first["sha256"] != new
            async with http.get(svc.url + "/status") as resp:
                page = await resp.text()
            assert page.count(f"{host} shows another certificate") == 1
            seen = _unkeyed(net, "h0")
            await eventually(lambda: _unkeyed(net, "h0") >= seen + 4)  # more probes, new connections
    lines = [e for e in logs if e.get("event") == "certificate changed"]
    assert [(e["host"], e["sha256"]) for e in lines] == [(host, new)]


async def _tls(http: aiohttp.ClientSession, url: str, host: str) -> Any:
    return (await _entry(http, url, host)).get("tls")


async def test_with_pinning_a_changed_host_gets_no_key_until_accepted(
    tmp_path: Path, http: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with (
        network("scale", hosts=2, models=1, tls=True) as net,
        serving(settings_for(net, tmp_path, PIN_CERTIFICATES="true")) as svc,
    ):
        host = net.host_url("h0")
        pinned = await eventually(lambda: _tls(http, svc.url, host))
        assert pinned["pinned"] == pinned["sha256"] == _sha256(net.tls_cert_pem)
        await eventually(lambda: _keyed(net, "h0") > 0)
        new = _sha256(net.renew_cert("h0"))

        async def withheld() -> Any:
            tls = await _tls(http, svc.url, host)
            return tls is not None and tls["sha256"] == new and not tls["trusted"] and tls

        await eventually(withheld)
        keyed, unkeyed = _keyed(net, "h0"), _unkeyed(net, "h0")
        # Health probes go on (no key); every keyed probe stops at the pinned certificate.
        await eventually(lambda: _unkeyed(net, "h0") >= unkeyed + 6)
        assert _keyed(net, "h0") == keyed
        entry = await eventually(lambda: _down(http, svc.url, host))
        assert entry["reason"] == "tls_error"

        # The command writes to the database the service reads its pins from.
        monkeypatch.setenv("LIBERTAI_MONITOR_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'monitor.db'}")
        monkeypatch.delenv("LIBERTAI_MONITOR_CONFIG", raising=False)
        code = await asyncio.to_thread(main, ["certs", "accept", host])
        assert code == 0

        async def trusted_again() -> Any:
            tls = await _tls(http, svc.url, host)
            return tls is not None and tls["pinned"] == new and tls["trusted"]

        await eventually(trusted_again)
        await eventually(lambda: _keyed(net, "h0") > keyed)


async def _down(http: aiohttp.ClientSession, url: str, host: str) -> Any:
    entry = await _entry(http, url, host)
    return entry.get("state") == "down" and entry
