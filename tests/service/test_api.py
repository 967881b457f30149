"""HTTP answers in the contract's shapes, from a monitor fed with probe results directly."""

from __future__ import annotations

import gzip
import json
from typing import Any

from aiohttp.test_utils import TestClient

from monitor.config_load import load_settings
from monitor.core.clock import FakeClock
from monitor.core.results import Outcome, ProbeKind, ProbeResult
from monitor.core.steps import finish
from monitor.service import Monitor
from monitor.web.api import make_app

FAST = "http://127.0.0.1:1001"
SLOW = "http://127.0.0.1:1002"
DEAD = "http://127.0.0.1:1003"
OUTSIDER = "http://10.9.9.9:80"


def _monitor() -> Monitor:
    settings = load_settings(
        environ={"LIBERTAI_MONITOR_ALLOWED_HOSTS": "http://127.0.0.1:*", "LIBERTAI_API_KEY": "k"}
    )
    m = Monitor(settings, clock=FakeClock())
    listing = {"hermes": [FAST, SLOW, DEAD, OUTSIDER], "hermes-thinking": [FAST, SLOW, DEAD, OUTSIDER]}
    finish(m.fleet.apply_listing(listing, m.clock.time()))
    now = m.clock.time() - 10
    for i in range(3):
        for host, ttft in ((FAST, 80.0), (SLOW, 400.0)):
            m.recorder.record(
                ProbeResult(
                    "hermes", host, ProbeKind.COMPLETION, Outcome.OK, now + i, 200, 1.0, ttft, ttft + 5
                )
            )
        m.recorder.record(
            ProbeResult("hermes", DEAD, ProbeKind.COMPLETION, Outcome.SERVER_ERROR, now + i, 503)
        )
    finish(m.publisher.publish(force=True))
    return m


async def _get(client: TestClient, path: str) -> tuple[int, Any]:  # type: ignore[type-arg]
    resp = await client.get(path)
    assert resp.headers["Content-Type"].startswith("application/json")
    return resp.status, await resp.json()


async def test_best_names_the_fastest_host_and_the_others_as_fallbacks(aiohttp_client: Any) -> None:
    client = await aiohttp_client(make_app(_monitor()))
    status, body = await _get(client, "/v1/best")
    assert status == 200 and body["generated_at"].endswith("Z")
    assert body["models"]["hermes"] == {
        "host": FAST,
        "fallbacks": [SLOW],
        # Shares by speed (1/80 against 1/400 ms), in millionths that sum to one.
        "candidates": [
            {
                "url": FAST,
                "weight": 0.833333,
                "ttft_ms_p50": 80.0,
                "ttft_ms_p95": 80.0,
                "load": 0.0,
                "warm": True,
            },
            {
                "url": SLOW,
                "weight": 0.166667,
                "ttft_ms_p50": 400.0,
                "ttft_ms_p95": 400.0,
                "load": 0.0,
                "warm": True,
            },
        ],
        "healthy_hosts": 2,
        "known_hosts": 4,
        # hermes is a reasoning model (hermes-thinking is listed): its base id runs with thinking off.
        "upstream_model": "hermes",
        "request_fields": {"chat_template_kwargs": {"enable_thinking": False}},
    }


async def test_thinking_alias_is_a_model_of_its_own_with_its_base_answer(aiohttp_client: Any) -> None:
    client = await aiohttp_client(make_app(_monitor()))
    _, body = await _get(client, "/v1/best/hermes-thinking")
    assert body["model"] == "hermes-thinking" and body["host"] == FAST
    assert {h["model"] for h in body["hosts"]} == {"hermes-thinking"}


async def test_hosts_carry_state_reason_and_figures(aiohttp_client: Any) -> None:
    client = await aiohttp_client(make_app(_monitor()))
    _, body = await _get(client, "/v1/hosts")
    hosts = {(h["model"], h["url"]): h for h in body["hosts"]}
    fast = hosts[("hermes", FAST)]
    assert fast["state"] == "up" and fast["reason"] == "ok" and fast["ttft_ms_p50"] == 80.0
    assert fast["availability"] == 1.0 and fast["samples"] == 3 and fast["key_ok"] is True
    dead = hosts[("hermes", DEAD)]
    assert dead["state"] == "down" and dead["reason"] == "server_error" and dead["consecutive_failures"] == 3
    outsider = hosts[("hermes", OUTSIDER)]
    assert outsider["state"] == "untrusted" and outsider["reason"] == "not_probed"


async def test_models_list_keeps_the_gateway_shape_best_first(aiohttp_client: Any) -> None:
    client = await aiohttp_client(make_app(_monitor()))
    _, body = await _get(client, "/libertai/models")
    assert body["hermes"]["servers"][:2] == [FAST, SLOW]
    assert set(body["hermes"]["servers"]) == {FAST, SLOW, DEAD, OUTSIDER}


async def test_unknown_model_is_404_with_detail(aiohttp_client: Any) -> None:
    client = await aiohttp_client(make_app(_monitor()))
    status, body = await _get(client, "/v1/best/nope")
    assert status == 404 and body == {"detail": "Unknown model nope"}


async def test_unknown_route_is_json_not_html(aiohttp_client: Any) -> None:
    client = await aiohttp_client(make_app(_monitor()))
    status, body = await _get(client, "/v2/whatever")
    assert status == 404 and "detail" in body


async def test_readyz_is_503_before_any_host_list(aiohttp_client: Any) -> None:
    settings = load_settings(environ={"LIBERTAI_API_KEY": "k"})
    client = await aiohttp_client(make_app(Monitor(settings)))
    status, body = await _get(client, "/readyz")
    assert status == 503 and "discovery" in body["detail"]
    status, _ = await _get(client, "/healthz")
    assert status == 200


async def test_panic_mode_answers_null_but_lists_hosts_to_try(aiohttp_client: Any) -> None:
    m = _monitor()
    now = m.clock.time()
    for host in (FAST, SLOW):
        for i in range(2):
            m.recorder.record(ProbeResult("hermes", host, ProbeKind.COMPLETION, Outcome.TIMEOUT, now + i))
    finish(m.publisher.publish(force=True))
    client = await aiohttp_client(make_app(m))
    _, body = await _get(client, "/v1/best")
    entry = body["models"]["hermes"]
    assert entry["host"] is None and entry["healthy_hosts"] == 0
    assert set(entry["fallbacks"]) == {FAST, SLOW, DEAD}


async def test_answers_are_gzipped_for_clients_that_accept_it(aiohttp_client: Any) -> None:
    client = await aiohttp_client(make_app(_monitor()))
    for path in ("/v1/best", "/v1/best/hermes", "/v1/hosts", "/libertai/models"):
        zipped = await client.get(path, headers={"Accept-Encoding": "gzip"}, auto_decompress=False)
        plain = await client.get(path, headers={"Accept-Encoding": "identity"})
        assert zipped.headers["Content-Encoding"] == "gzip" and "Content-Encoding" not in plain.headers
        assert json.loads(gzip.decompress(await zipped.read())) == await plain.json()


async def test_gzip_refused_with_q_zero_gets_plain_json(aiohttp_client: Any) -> None:
    client = await aiohttp_client(make_app(_monitor()))
    resp = await client.get("/v1/best", headers={"Accept-Encoding": "gzip;q=0"}, auto_decompress=False)
    assert "Content-Encoding" not in resp.headers and "hermes" in (await resp.json())["models"]


async def test_a_new_snapshot_is_served_at_once_not_the_previous_answer(aiohttp_client: Any) -> None:
    m = _monitor()
    client = await aiohttp_client(make_app(m))
    _, before = await _get(client, "/v1/best/hermes")
    assert before["host"] == FAST
    now = m.clock.time()
    for i in range(2):
        m.recorder.record(ProbeResult("hermes", FAST, ProbeKind.COMPLETION, Outcome.TIMEOUT, now + i))
    finish(m.publisher.publish())
    _, after = await _get(client, "/v1/best/hermes")
    assert after["host"] == SLOW
