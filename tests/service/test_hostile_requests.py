"""Hostile requests through the real app: awkward model ids are reachable, bad history queries are
422 with a reason, never a 500."""

from __future__ import annotations

import re
from html import unescape as html_unescape
from typing import Any
from urllib.parse import quote

import pytest
from aiohttp.test_utils import TestClient

from monitor.config_load import load_settings
from monitor.core.clock import FakeClock
from monitor.core.results import Outcome, ProbeKind, ProbeResult
from monitor.core.steps import finish
from monitor.server import service_app
from monitor.service import Monitor
from monitor.store import HistoryPoint

HOST = "http://127.0.0.1:1001"
# Every one is printable, so discovery lists it; each broke a route pattern or a URL somewhere.
AWKWARD = [
    "{model}",
    "a}b{c",
    "org/model",
    "org/sub/model",
    "100%",
    "a%2Fb",
    "q?x=1#frag",
    "ünï-códe",
    "x.svg",
    "a+b&c=d",
    "back\\slash",
    "quote\"'<>",
]


class _Recorder:
    """A history reader that records what it was asked and answers one point."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str | None, float, float, int]] = []

    async def history(
        self, model: str, host: str | None, since: float, until: float, step_s: int
    ) -> list[HistoryPoint]:
        self.calls.append((model, host, since, until, step_s))
        return [HistoryPoint(since, HOST, 3, 3, 1.0, 80.0, 90.0, 85.0)]


def _monitor(models: list[str]) -> tuple[Monitor, _Recorder]:
    settings = load_settings(
        environ={
            "LIBERTAI_MONITOR_ALLOWED_HOSTS": "http://127.0.0.1:*",
            "LIBERTAI_API_KEY": "sk-test-0123456789",
        }
    )
    m = Monitor(settings, clock=FakeClock())
    finish(m.fleet.apply_listing({model: [HOST] for model in models}, m.clock.time()))
    for model in models:
        for i in range(3):
            m.recorder.record(
                ProbeResult(
                    model, HOST, ProbeKind.COMPLETION, Outcome.OK, m.clock.time() - 5 + i, 200, 1.0, 80.0
                )
            )
    finish(m.publisher.publish(force=True))
    recorder = _Recorder()
    m.history = recorder
    return m, recorder


async def _client(aiohttp_client: Any, models: list[str]) -> tuple[TestClient, _Recorder]:  # type: ignore[type-arg]
    m, recorder = _monitor(models)
    return await aiohttp_client(service_app(m)), recorder


def _escaped(model: str) -> str:
    return quote(model, safe="")


@pytest.mark.parametrize("model", AWKWARD)
async def test_every_listed_model_id_has_its_best_host_answer(aiohttp_client: Any, model: str) -> None:
    client, _ = await _client(aiohttp_client, [model])
    resp = await client.get(f"/v1/best/{_escaped(model)}")
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert body["model"] == model and body["host"] == HOST


@pytest.mark.parametrize("model", AWKWARD)
async def test_every_listed_model_id_has_its_history(aiohttp_client: Any, model: str) -> None:
    client, recorder = await _client(aiohttp_client, [model])
    resp = await client.get(f"/v1/history/{_escaped(model)}?since=1h&step=60")
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["model"] == model
    assert recorder.calls[0][0] == model


@pytest.mark.parametrize("model", AWKWARD)
async def test_every_listed_model_id_has_its_status_page_and_badge(aiohttp_client: Any, model: str) -> None:
    client, _ = await _client(aiohttp_client, [model])
    page = await client.get(f"/status/{_escaped(model)}")
    badge = await client.get(f"/badge/{_escaped(model)}.svg")
    assert page.status == 200 and badge.status == 200
    assert badge.content_type == "image/svg+xml"


async def test_a_model_id_with_a_slash_is_reachable_with_the_slash_unescaped(aiohttp_client: Any) -> None:
    client, _ = await _client(aiohttp_client, ["org/sub/model"])
    resp = await client.get("/v1/best/org/sub/model")
    assert resp.status == 200 and (await resp.json())["model"] == "org/sub/model"


async def test_every_model_link_of_the_status_overview_reaches_its_page(aiohttp_client: Any) -> None:
    client, _ = await _client(aiohttp_client, AWKWARD)
    html = await (await client.get("/status")).text()
    links = {html_unescape(href) for href in re.findall(r'href="(/status/[^"]+)"', html)}
    links.discard("/status/feed.atom")  # the incidents' feed, linked from the page's head
    assert len(links) == len(AWKWARD)
    for link in links:
        resp = await client.get(link)
        assert resp.status == 200, link


async def test_an_unknown_model_with_braces_is_a_json_404(aiohttp_client: Any) -> None:
    client, _ = await _client(aiohttp_client, ["known"])
    resp = await client.get("/v1/best/%7Bnope%7D")
    assert resp.status == 404 and await resp.json() == {"detail": "Unknown model {nope}"}


HOSTILE_QUERIES = [
    "since=nan",
    "until=nan",
    "since=NaN&until=nan",
    "since=inf",
    "since=-inf",
    "until=inf",
    "since=1e11&until=1e12&step=1e9",
    "since=-1e11",
    "since=1e308",
    "since=-1e308",
    "until=1e308",
    "since=1e308d",
    "since=nanh",
    "step=nan",
    "step=inf",
    "step=-1",
    "step=-5m",
    "step=0",
    "step=0.5",
    "step=1e308",
    "step=1e308d",
    "step=1e12",
    "since=0&step=1",
    "since=0001-01-01T00:00:00",
    "since=9999-12-31T23:59:59-23:59",
    "since=99999-01-01",
    "since=%00",
    "since=",
    "step=",
    "until=",
    "since=1h&until=2h",
    "host=%00",
    "host=" + "x" * 5000,
]


@pytest.mark.parametrize("query", HOSTILE_QUERIES)
async def test_a_hostile_history_query_is_refused_with_a_reason_never_a_500(
    aiohttp_client: Any, query: str
) -> None:
    client, recorder = await _client(aiohttp_client, ["hermes"])
    resp = await client.get(f"/v1/history/hermes?{query}")
    body = await resp.json()
    assert resp.status == 422, body
    assert isinstance(body["detail"], str) and body["detail"]
    assert recorder.calls == []  # nothing unchecked reached the store


async def test_a_history_query_names_the_value_it_refuses(aiohttp_client: Any) -> None:
    client, _ = await _client(aiohttp_client, ["hermes"])
    assert (await (await client.get("/v1/history/hermes?since=nan")).json())["detail"].startswith("since ")
    assert (await (await client.get("/v1/history/hermes?until=1e308")).json())["detail"].startswith("until ")
    assert (await (await client.get("/v1/history/hermes?step=-1")).json())["detail"].startswith("step ")


@pytest.mark.parametrize(
    "query",
    ["since=0&until=1e6&step=1d", "since=253402300000&until=253402300799&step=60", "since=7d&step=1h", ""],
)
async def test_history_at_the_edges_of_the_range_answers(aiohttp_client: Any, query: str) -> None:
    client, recorder = await _client(aiohttp_client, ["hermes"])
    resp = await client.get(f"/v1/history/hermes?{query}")
    assert resp.status == 200, await resp.text()
    assert len(recorder.calls) == 1
