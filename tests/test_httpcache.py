"""ETag, Cache-Control and CORS on the monitor's JSON answers (monitor.web.httpcache), on a small app
that serves answers the way monitor.web.api does: the same bytes object until the snapshot changes."""

from __future__ import annotations

import gzip
import json
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from monitor.web.httpcache import MAX_AGE_S, cache_headers, etag_of, matches

Client = Any  # the aiohttp_client fixture's factory


def _best(host: str, ttft: float, at: str) -> bytes:
    return json.dumps(
        {
            "model": "m",
            "host": host,
            "fallbacks": [],
            "generated_at": at,
            "hosts": [{"model": "m", "url": host, "state": "up", "ttft_ms_p50": ttft}],
        }
    ).encode()


class Answers:
    def __init__(self) -> None:
        self.best = _best("https://a.libertai.io", 10.0, "t0")
        self.hosts = b'{"generated_at":"t0","hosts":[]}'

    async def best_one(self, request: web.Request) -> web.Response:
        if request.match_info["model"] != "m":
            return web.json_response({"detail": "Unknown model"}, status=404)
        if "gzip" in request.headers.get("Accept-Encoding", ""):
            headers = {"Content-Encoding": "gzip", "Content-Type": "application/json"}
            return web.Response(body=gzip.compress(self.best), headers=headers)
        return web.Response(body=self.best, content_type="application/json")

    async def all_hosts(self, request: web.Request) -> web.Response:
        return web.Response(body=self.hosts, content_type="application/json")

    async def healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})


@pytest.fixture
async def served(aiohttp_client: Client) -> tuple[TestClient[Any, Any], Answers]:
    answers = Answers()
    app = web.Application(middlewares=[cache_headers()])
    app.router.add_get("/v1/best/{model}", answers.best_one)
    app.router.add_get("/v1/hosts", answers.all_hosts)
    app.router.add_get("/healthz", answers.healthz)
    client: TestClient[Any, Any] = await aiohttp_client(app)
    return client, answers


async def test_an_unchanged_answer_costs_a_304_without_a_body(
    served: tuple[TestClient[Any, Any], Answers],
) -> None:
    client, _ = served
    first = await client.get("/v1/best/m")
    etag = first.headers["ETag"]
    again = await client.get("/v1/best/m", headers={"If-None-Match": etag})
    assert again.status == 304 and await again.read() == b""
    assert again.headers["ETag"] == etag and again.headers["Cache-Control"] == f"max-age={MAX_AGE_S}"


async def test_a_best_answer_keeps_its_etag_while_only_measurements_move(
    served: tuple[TestClient[Any, Any], Answers],
) -> None:
    client, answers = served
    etag = (await client.get("/v1/best/m")).headers["ETag"]
    answers.best = _best("https://a.libertai.io", 12.5, "t1")
    assert etag.startswith('W/"')
    assert (await client.get("/v1/best/m", headers={"If-None-Match": etag})).status == 304


async def test_a_new_best_host_changes_the_etag(served: tuple[TestClient[Any, Any], Answers]) -> None:
    client, answers = served
    etag = (await client.get("/v1/best/m")).headers["ETag"]
    answers.best = _best("https://b.libertai.io", 10.0, "t1")
    changed = await client.get("/v1/best/m", headers={"If-None-Match": etag})
    assert changed.status == 200 and changed.headers["ETag"] != etag
    assert (await changed.json())["host"] == "https://b.libertai.io"


async def test_the_gzipped_and_plain_answers_validate_each_other(
    served: tuple[TestClient[Any, Any], Answers],
) -> None:
    client, _ = served
    plain = await client.get("/v1/best/m", headers={"Accept-Encoding": "identity"})
    zipped = await client.get("/v1/best/m", headers={"Accept-Encoding": "gzip"})
    assert plain.headers["ETag"] == zipped.headers["ETag"]


async def test_hosts_get_a_strong_etag_over_the_exact_bytes(
    served: tuple[TestClient[Any, Any], Answers],
) -> None:
    client, answers = served
    etag = (await client.get("/v1/hosts")).headers["ETag"]
    assert not etag.startswith("W/")
    answers.hosts = b'{"generated_at":"t1","hosts":[]}'
    assert (await client.get("/v1/hosts", headers={"If-None-Match": etag})).status == 200


async def test_a_browser_on_another_origin_may_read_the_answers_and_errors(
    served: tuple[TestClient[Any, Any], Answers],
) -> None:
    client, _ = served
    ok = await client.get("/v1/best/m", headers={"Origin": "https://status.example"})
    missing = await client.get("/v1/best/nope")
    assert (
        ok.headers["Access-Control-Allow-Origin"] == "*"
        and "ETag" in ok.headers["Access-Control-Expose-Headers"]
    )
    assert missing.status == 404 and missing.headers["Access-Control-Allow-Origin"] == "*"
    assert "ETag" not in missing.headers


async def test_a_preflight_is_answered(served: tuple[TestClient[Any, Any], Answers]) -> None:
    client, _ = served
    resp = await client.options("/v1/best/m", headers={"Access-Control-Request-Method": "GET"})
    assert resp.status == 204 and "GET" in resp.headers["Access-Control-Allow-Methods"]
    assert "If-None-Match" in resp.headers["Access-Control-Allow-Headers"]


async def test_other_routes_are_left_alone(served: tuple[TestClient[Any, Any], Answers]) -> None:
    client, _ = served
    resp = await client.get("/healthz")
    assert "ETag" not in resp.headers and "Access-Control-Allow-Origin" not in resp.headers


def test_if_none_match_compares_weakly_and_accepts_lists_and_star() -> None:
    assert matches('"x", W/"abc"', '"abc"') and matches("*", 'W/"q"')
    assert not matches('"abd"', '"abc"') and not matches(None, '"abc"')


def test_the_weak_etag_ignores_generated_at_and_host_measurements() -> None:
    a, b = _best("https://a.libertai.io", 1.0, "t0"), _best("https://a.libertai.io", 9.0, "t9")
    assert etag_of(a, "weak", False) == etag_of(b, "weak", False) == etag_of(gzip.compress(b), "weak", True)
