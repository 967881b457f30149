"""The page says why a host is down (what its last failing probe answered), and when the gateway
rejects the monitor's key, says so once instead of blaming every host."""

from __future__ import annotations

import html
import re
from dataclasses import replace
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient

from monitor.core.failure import Failure
from monitor.core.results import HostState, Outcome, ProbeKind
from tests.status.support import NOW, A, B, FakeSource, app_for, host, model, snapshot

Client = TestClient[web.Request, web.Application]
BANNER = "The monitor's API key is rejected by the gateway:"


async def _text(client: Client, path: str = "/") -> str:
    resp = await client.get(path)
    assert resp.status == 200
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", await resp.text())))


def _source(reason: Outcome, failure: Failure, key_outcome: Outcome = Outcome.OK) -> FakeSource:
    down = replace(host("m", B, HostState.DOWN, reason, ttft=None), last_failure=failure)
    snap = replace(snapshot(model("m", [host("m", A), down])), key_outcome=key_outcome)
    source = FakeSource(snap)
    source.incidents.state_changed(NOW - 60, "m", B, HostState.UP, HostState.DOWN, reason)
    return source


OVERLOADED = Failure(ProbeKind.COMPLETION, 503, "Model overloaded", NOW - 3, Outcome.SERVER_ERROR)
REFUSED = Failure(ProbeKind.AUTH, 401, "Invalid API key", NOW - 3, Outcome.KEY_REJECTED)


async def test_a_down_host_shows_what_its_failing_probe_answered(aiohttp_client: Any) -> None:
    client = await aiohttp_client(app_for(_source(Outcome.SERVER_ERROR, OVERLOADED))[0])
    assert "server error (5xx) HTTP 503: Model overloaded" in await _text(client)


async def test_a_host_that_refuses_a_key_the_gateway_accepts_is_named(aiohttp_client: Any) -> None:
    client = await aiohttp_client(app_for(_source(Outcome.KEY_REJECTED, REFUSED))[0])
    text = await _text(client)
    assert "key not distributed to this host (401/403) HTTP 401: Invalid API key" in text
    assert BANNER not in text


async def test_a_key_the_gateway_rejects_is_one_banner_and_no_host_is_blamed(aiohttp_client: Any) -> None:
    source = _source(Outcome.KEY_REJECTED, REFUSED, key_outcome=Outcome.KEY_REJECTED)
    client = await aiohttp_client(app_for(source)[0])
    for path in ("/", "/status/m"):
        text = await _text(client, path)
        assert text.count(BANNER) == 1
        assert "key not distributed" not in text
        assert "Invalid API key" not in text
