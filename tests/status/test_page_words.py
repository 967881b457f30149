"""What the page says that a new user could misread: how often it reloads, whose state the headline
gives, which probe of a down host succeeded, what is measured for models without a time to first
token, and host URLs kept whole."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from monitor.core.facts import DownFacts, down_facts
from monitor.core.health import HealthPolicy, new_host, replay
from monitor.core.results import HostState, Outcome, ProbeKind, ProbeResult
from tests.status.support import NOW, A, B, FakeSource, app_for, host, model, snapshot

Client = TestClient[web.Request, web.Application]
META_REFRESH = re.compile(r'<meta http-equiv="refresh" content="([^"]*)">')


def _fleet() -> FakeSource:
    served = model("served", [host("served", A)])
    degraded = model("degraded", [host("degraded", A), host("degraded", B, HostState.DOWN, Outcome.TIMEOUT)])
    return FakeSource(snapshot(served, degraded))


async def _get(client: Client, path: str, status: int = 200) -> str:
    resp = await client.get(path)
    assert resp.status == status
    return await resp.text()


@pytest.mark.parametrize("asked", ["0.2", "1", "4.9"])
async def test_a_refresh_below_five_seconds_is_raised_to_five(aiohttp_client: Any, asked: str) -> None:
    html = await _get(await aiohttp_client(app_for(_fleet())[0]), f"/?refresh={asked}")
    assert META_REFRESH.findall(html) == ["5"]
    assert 'data-refresh="5"' in html


async def test_refresh_zero_turns_refreshing_off(aiohttp_client: Any) -> None:
    html = await _get(await aiohttp_client(app_for(_fleet())[0]), "/status/served?refresh=0")
    assert META_REFRESH.findall(html) == []
    assert 'data-refresh="0"' in html


async def test_an_unknown_models_page_never_reloads_at_once(aiohttp_client: Any) -> None:
    client = await aiohttp_client(app_for(_fleet())[0])
    assert META_REFRESH.findall(await _get(client, "/status/nope", 404)) == ["15"]
    assert META_REFRESH.findall(await _get(client, "/status/nope?refresh=0", 404)) == []


async def test_a_models_page_headline_speaks_of_that_model_only(aiohttp_client: Any) -> None:
    client = await aiohttp_client(app_for(_fleet())[0])
    served = await _get(client, "/status/served")
    assert "All models served" not in served and "This model is served" in served
    assert "some of its hosts are down" in await _get(client, "/status/degraded")
    assert "Some models degraded" in await _get(client, "/")


def _result(kind: ProbeKind, outcome: Outcome, at: float) -> ProbeResult:
    return ProbeResult("m", A, kind, outcome, at, ttft_ms=50.0 if kind is ProbeKind.COMPLETION else None)


def test_a_down_host_says_which_probe_succeeded_and_which_fails_since_when() -> None:
    results = [
        _result(ProbeKind.COMPLETION, Outcome.OK, NOW - 100),
        _result(ProbeKind.COMPLETION, Outcome.SERVER_ERROR, NOW - 60),
        _result(ProbeKind.HEALTH, Outcome.OK, NOW - 30),
        _result(ProbeKind.COMPLETION, Outcome.SERVER_ERROR, NOW - 20),
        _result(ProbeKind.HEALTH, Outcome.OK, NOW - 1),
    ]
    h = replay(new_host("m", A, True), results, HealthPolicy())
    assert h.state is HostState.DOWN
    assert down_facts(h) == DownFacts(ProbeKind.HEALTH, ProbeKind.COMPLETION, NOW - 60)


async def test_the_page_shows_a_down_hosts_passing_and_failing_probes(aiohttp_client: Any) -> None:
    down = host("m", A, HostState.DOWN, Outcome.SERVER_ERROR, ttft=None, last_ok_at=NOW - 1)
    down = replace(down, down=DownFacts(ProbeKind.HEALTH, ProbeKind.COMPLETION, NOW - 60))
    client = await aiohttp_client(app_for(FakeSource(snapshot(model("m", [down]))))[0])
    text = re.sub(r"<[^>]+>", "", await _get(client, "/status/m"))
    assert "health ok 2025-11-24 15:59:59 UTC" in text
    assert "completion failing since 2025-11-24 15:59:00 UTC" in text


@pytest.mark.parametrize(
    ("kind", "label"), [(ProbeKind.EMBEDDING, "Embedding time p50"), (ProbeKind.HEALTH, "Health latency p50")]
)
async def test_models_never_measured_for_ttft_show_their_latency_and_no_ttft_chart(
    aiohttp_client: Any, kind: ProbeKind, label: str
) -> None:
    h = replace(host("e", A, ttft=None), latency_ms_p50=42.0, latency_kind=kind)
    client = await aiohttp_client(app_for(FakeSource(snapshot(model("e", [h]))))[0])
    for path in ("/", "/status/e"):
        html = await _get(client, path)
        assert "no TTFT yet" not in html and "TTFT p50" not in html
        assert f"<th>{label}</th>" in html and "42 ms" in html
    assert "Time to first token" not in await _get(client, "/status/e")


async def test_a_host_url_never_breaks_inside_host_and_port(aiohttp_client: Any) -> None:
    url = "https://a.example.libertai.io:8443"
    client = await aiohttp_client(app_for(FakeSource(snapshot(model("m", [host("m", url)]))))[0])
    html = await _get(client, "/status/m")
    assert '<span class="hp">a.example.libertai.io:8443</span>' in html
    css = await _get(client, re.findall(r'href="(/static/[^"]+\.css)"', html)[0])
    assert re.search(r"\.hp \{[^}]*white-space: nowrap", css)
