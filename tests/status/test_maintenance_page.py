"""The page shows a host in a maintenance window as such, with the operator's reason, and marks a
host that serves another model than its listing says."""

from __future__ import annotations

import html
import re
from dataclasses import replace
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient

from monitor.core.identity import Identity
from monitor.core.maintenance import Drain
from tests.status.support import NOW, A, B, FakeSource, app_for, host, model, snapshot

Client = TestClient[web.Request, web.Application]


async def _text(client: Client, path: str) -> str:
    resp = await client.get(path)
    assert resp.status == 200
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", await resp.text())))


async def test_a_host_in_maintenance_shows_maintenance_with_the_reason_on_its_row(
    aiohttp_client: Any,
) -> None:
    drained = replace(host("m", B), maintenance=Drain("kernel upgrade <4.2>", NOW + 3600))
    client = await aiohttp_client(app_for(FakeSource(snapshot(model("m", [host("m", A), drained]))))[0])
    for path in ("/", "/status/m"):
        text = await _text(client, path)
        assert text.count("maintenance until") == 1
        assert re.search(r"maintenance until \S+ \S+ UTC: kernel upgrade <4\.2>", text), text


async def test_a_host_serving_another_model_is_marked_with_what_differed(aiohttp_client: Any) -> None:
    other = replace(
        host("m", B), identity=Identity("mismatch", "first token 'The' vs 'Paris' on 3 other hosts")
    )
    client = await aiohttp_client(app_for(FakeSource(snapshot(model("m", [host("m", A), other]))))[0])
    text = await _text(client, "/status/m")
    assert text.count("another model?") == 1
    assert "first token 'The' vs 'Paris' on 3 other hosts" in text
