"""The pages as a client gets them: every model with its best host, states in words, history,
badges, escaping, settings. The monitor is stood in for by a fixed snapshot (no network)."""

from __future__ import annotations

import gzip
import re
import time
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from monitor import slices
from monitor.config import ConfigError
from monitor.config_load import load_settings
from monitor.core.keys import HostKey
from monitor.core.results import HostState, Outcome, ProbeKind, ProbeResult
from monitor.core.snapshot import with_aliases
from monitor.core.steps import finish
from monitor.server import service_app
from monitor.service import Monitor
from monitor.web.status import routes
from monitor.web.status.history import Bucket, History, hour_start
from tests.status.support import NOW, A, B, C, FakeSource, app_for, host, model, snapshot
from tests.turns import Turns

Client = TestClient[web.Request, web.Application]


def _fleet() -> FakeSource:
    hermes = model(
        "hermes-3-8b-tee",
        [
            host("hermes-3-8b-tee", A, ttft=80.0),
            host("hermes-3-8b-tee", B, HostState.DOWN, Outcome.KEY_REJECTED, ttft=None),
        ],
    )
    gemma = model("gemma-3-27b", [host("gemma-3-27b", C, HostState.DOWN, Outcome.NOT_LOADED, ttft=None)])
    views = with_aliases(
        {m.model: m for m in (hermes, gemma)}, {"hermes-3-8b-tee-thinking": "hermes-3-8b-tee"}
    )
    return FakeSource(snapshot(*views.values()))


async def _page(client: Client, path: str = "/") -> str:
    resp = await client.get(path)
    assert resp.status == 200, resp.status
    assert resp.headers["Content-Type"] == "text/html; charset=utf-8"
    return await resp.text()


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


async def test_overview_names_every_model_and_its_best_host(aiohttp_client: Any) -> None:
    client = await aiohttp_client(app_for(_fleet())[0])
    html = await _page(client)
    for name in ("hermes-3-8b-tee", "hermes-3-8b-tee-thinking", "gemma-3-27b"):
        assert f'data-model="{name}"' in html
    best = [re.sub(r"<[^>]+>", "", b) for b in re.findall(r'<dd class="best">(<code>.*?)</dd>', html)]
    assert best == [A, A]
    assert "none: no healthy host" in html


async def test_status_is_the_same_page_as_the_root(aiohttp_client: Any) -> None:
    client = await aiohttp_client(app_for(_fleet())[0])
    assert await _page(client, "/status") == await _page(client, "/")


async def test_a_down_host_shows_its_reason_in_words(aiohttp_client: Any) -> None:
    client = await aiohttp_client(app_for(_fleet())[0])
    text = _text(await _page(client))
    assert "✕ down key not distributed to this host (401/403)" in text
    assert "health answered 202: model not loaded" in text


async def test_header_says_some_models_have_no_healthy_host(aiohttp_client: Any) -> None:
    client = await aiohttp_client(app_for(_fleet())[0])
    assert "Some models have no healthy host" in await _page(client)


async def test_header_says_all_models_served_when_they_are(aiohttp_client: Any) -> None:
    source = FakeSource(snapshot(model("m", [host("m", A)])))
    client = await aiohttp_client(app_for(source)[0])
    assert "All models served" in await _page(client)


async def test_header_shows_the_monitors_own_readiness(aiohttp_client: Any) -> None:
    source = _fleet()
    source.ready.checks = {"discovery": "ok", "api_key": "rejected by the gateway", "database": "ok"}
    client = await aiohttp_client(app_for(source)[0])
    text = _text(await _page(client))
    assert "✕ Gateway key: rejected by the gateway" in text
    assert "✓ Host list: ok, updated 10 s ago" in text


async def test_thinking_alias_says_what_to_send_a_host(aiohttp_client: Any) -> None:
    client = await aiohttp_client(app_for(_fleet())[0])
    html = await _page(client)
    card = html[html.index('data-model="hermes-3-8b-tee-thinking"') :]
    fields = "{&#34;chat_template_kwargs&#34;: {&#34;enable_thinking&#34;: true}}"
    assert f"<code>hermes-3-8b-tee</code> with <code>{fields}</code>" in card


async def test_host_figures_are_shown(aiohttp_client: Any) -> None:
    client = await aiohttp_client(app_for(_fleet())[0])
    text = _text(await _page(client))
    assert "80 ms" in text and "120 ms" in text  # TTFT p50 and p95
    assert "2025-11-24 15:59:55 UTC" in text  # last success (the script shows it as an age)


async def test_uptime_bars_carry_the_hourly_figures(aiohttp_client: Any) -> None:
    source = _fleet()
    hour = hour_start(NOW) - 3600
    bucket = Bucket(hour, 120, 117, 143.6, 200.0)
    app, state = app_for(source)
    state.history = History(hourly={HostKey("hermes-3-8b-tee", A): {hour: bucket}}, loaded_at=NOW, version=1)
    client = await aiohttp_client(app)
    html = await _page(client)
    assert "<title>Nov 24 15:00 · 97.5% · 120 probes · TTFT p50 144 ms</title>" in html


async def test_model_page_has_the_30_day_ttft_chart(aiohttp_client: Any) -> None:
    source = _fleet()
    day = float(int(NOW // 86400) * 86400)
    app, state = app_for(source)
    state.history = History(
        daily={HostKey("hermes-3-8b-tee", A): {day: Bucket(day, 3000, 2990, 81.0, 140.0)}},
        loaded_at=NOW,
        version=1,
    )
    client = await aiohttp_client(app)
    html = await _page(client, "/status/hermes-3-8b-tee")
    assert 'class="chart"' in html
    assert "TTFT p50 81 ms · p95 140 ms" in html
    assert 'data-model="gemma-3-27b"' not in html


async def test_unknown_model_page_is_404_html(aiohttp_client: Any) -> None:
    client = await aiohttp_client(app_for(_fleet())[0])
    resp = await client.get("/status/nope")
    assert resp.status == 404
    assert "Unknown model nope" in await resp.text()


async def test_incidents_are_listed_newest_first(aiohttp_client: Any) -> None:
    source = _fleet()
    source.incidents.state_changed(
        NOW - 300, "hermes-3-8b-tee", B, HostState.UP, HostState.DOWN, Outcome.KEY_REJECTED
    )
    source.incidents.best_changed(NOW - 60, "hermes-3-8b-tee", B, A)
    client = await aiohttp_client(app_for(source)[0])
    text = _text(await _page(client))
    newest = text.index(f"best host is now {A} (was {B})")
    older = text.index(f"{B} went down: key not distributed to this host")
    assert newest < older


async def test_badge_shows_state_and_is_svg(aiohttp_client: Any) -> None:
    client = await aiohttp_client(app_for(_fleet())[0])
    resp = await client.get("/badge/hermes-3-8b-tee.svg")
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("image/svg+xml")
    body = await resp.text()
    assert ">hermes-3-8b-tee</text>" in body and ">degraded</text>" in body


async def test_badge_of_an_unknown_model_is_404_but_still_an_image(aiohttp_client: Any) -> None:
    client = await aiohttp_client(app_for(_fleet())[0])
    resp = await client.get("/badge/nope.svg")
    assert resp.status == 404
    assert "unknown model" in await resp.text()


async def test_script_in_a_model_id_or_host_url_is_escaped(aiohttp_client: Any) -> None:
    evil_model = "m<script>alert(1)</script>"
    evil_url = 'https://x.libertai.io/"><script>alert(2)</script>'
    v = model(evil_model, [host(evil_model, evil_url, HostState.DOWN, Outcome.TIMEOUT)])
    source = FakeSource(snapshot(v))
    source.incidents.state_changed(
        NOW - 1, evil_model, evil_url, HostState.UP, HostState.DOWN, Outcome.TIMEOUT
    )
    client = await aiohttp_client(app_for(source)[0])
    for path in (
        "/",
        "/status/m%3Cscript%3Ealert(1)%3C%2Fscript%3E",
        "/badge/m%3Cscript%3Ealert(1)%3C%2Fscript%3E.svg",
    ):
        resp = await client.get(path)
        body = await resp.text()
        assert resp.status == 200, path
        assert "<script>alert" not in body, path
        assert "&lt;script&gt;alert" in body, path


async def test_pages_forbid_inline_scripts(aiohttp_client: Any) -> None:
    client = await aiohttp_client(app_for(_fleet())[0])
    resp = await client.get("/")
    assert "script-src 'self'" in resp.headers["Content-Security-Policy"]
    assert "unsafe-inline" not in resp.headers["Content-Security-Policy"]


async def test_page_is_gzipped_for_browsers(aiohttp_client: Any) -> None:
    client = await aiohttp_client(app_for(_fleet())[0])
    resp = await client.get("/", headers={"Accept-Encoding": "gzip"}, auto_decompress=False)
    assert resp.headers["Content-Encoding"] == "gzip"
    assert b"hermes-3-8b-tee" in gzip.decompress(await resp.read())


async def test_static_files_are_served_with_their_types(aiohttp_client: Any) -> None:
    client = await aiohttp_client(app_for(_fleet())[0])
    html = await _page(client)
    (css,) = re.findall(r'href="(/static/status/[^"]+\.css)"', html)
    (js,) = re.findall(r'src="(/static/status/[^"]+\.js)"', html)
    assert (await client.get(css)).headers["Content-Type"].startswith("text/css")
    assert (await client.get(js)).headers["Content-Type"].startswith("text/javascript")
    assert (await client.get("/static/status/x/../status.css")).status == 404


async def test_refresh_interval_can_be_set_by_query(aiohttp_client: Any) -> None:
    client = await aiohttp_client(app_for(_fleet())[0])
    assert 'data-refresh="15"' in await _page(client)
    assert 'data-refresh="60"' in await _page(client, "/?refresh=60")
    assert 'data-refresh="15"' in await _page(client, "/?refresh=often")


async def test_a_new_snapshot_is_shown_at_once(aiohttp_client: Any) -> None:
    source = FakeSource(snapshot(model("m", [host("m", A)])))
    client = await aiohttp_client(app_for(source)[0])
    assert "All models served" in await _page(client)
    source.snapshot = snapshot(model("m", [host("m", A, HostState.DOWN, Outcome.TIMEOUT)]), at=NOW + 1)
    assert "no answer within the probe timeout" in await _page(client)


def _monitor(**env: str) -> Monitor:
    environ = {"LIBERTAI_MONITOR_ALLOWED_HOSTS": "http://127.0.0.1:*", **env}
    return Monitor(load_settings(environ=environ))


async def test_service_serves_the_page_with_its_title(aiohttp_client: Any) -> None:
    client = await aiohttp_client(service_app(_monitor(LIBERTAI_MONITOR_STATUS_TITLE="Our <LLM> hosts")))
    html = await _page(client)
    assert "<title>Our &lt;LLM&gt; hosts</title>" in html
    assert "No models known yet" in html


async def test_status_page_can_be_turned_off(aiohttp_client: Any) -> None:
    client = await aiohttp_client(service_app(_monitor(LIBERTAI_MONITOR_STATUS_PAGE="false")))
    for path in ("/", "/status", "/status/feed.atom", "/status/m", "/badge/m.svg"):
        resp = await client.get(path)
        assert resp.status == 404
        assert await resp.json() == {"detail": "Not Found"}


async def test_service_records_a_host_going_down_as_an_incident(aiohttp_client: Any) -> None:
    m = _monitor(LIBERTAI_API_KEY="k")
    dead = "http://127.0.0.1:1003"
    finish(m.fleet.apply_listing({"hermes": [dead]}, NOW))
    for i in range(3):
        ok = i == 0
        outcome = Outcome.OK if ok else Outcome.SERVER_ERROR
        m.recorder.record(
            ProbeResult("hermes", dead, ProbeKind.COMPLETION, outcome, time.time() + i, 200, 1.0, 50.0)
        )
    finish(m.publisher.publish(force=True))
    client = await aiohttp_client(service_app(m))
    text = _text(await _page(client))
    assert f"hermes : {dead} went down: server error (5xx)" in text


def test_a_blank_or_overlong_title_is_a_configuration_error() -> None:
    for bad in ("", "   ", "x" * 121):
        with pytest.raises(ConfigError, match="LIBERTAI_MONITOR_STATUS_TITLE"):
            load_settings(environ={"LIBERTAI_MONITOR_STATUS_TITLE": bad})


async def test_a_page_is_rendered_on_the_loop_a_card_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    source = FakeSource(snapshot(*(model(f"m{i}", [host(f"m{i}", A)]) for i in range(10))))
    _app, state = app_for(source)
    run_in_slices = slices.run_in_slices  # a turn of the loop after every step, however fast
    monkeypatch.setattr(routes, "run_in_slices", lambda work: run_in_slices(work, 0.0))
    with Turns() as turns:
        page = await state.page(None, 15.0)
    assert page is not None and b'data-model="m9"' in page[0]
    assert turns.count >= 10  # a turn at least between cards
