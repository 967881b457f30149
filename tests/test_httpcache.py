"""ETag, Cache-Control and CORS on the monitor's JSON answers (monitor.web.httpcache), on the API
app (monitor.web.api) serving snapshots built directly: each answer carries the ETag made with it."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, cast

import pytest
from aiohttp.test_utils import TestClient

from monitor.core.answer import HOSTS, AnswerKey, Sort
from monitor.core.clock import FakeClock
from monitor.core.results import HostState
from monitor.core.snapshot import Snapshot
from monitor.core.steps import finish
from monitor.web.api import make_app
from monitor.web.httpcache import MAX_AGE_S, matches
from monitor.web.readout import Readout
from tests.status.support import NOW, A, B, Ready, host, model, snapshot

Client = Any  # the aiohttp_client fixture's factory


def _answers(a_ttft: float = 10.0, at: float = NOW, a_state: HostState = HostState.UP) -> Snapshot:
    return snapshot(model("m", [host("m", A, a_state, ttft=a_ttft), host("m", B, ttft=50.0)]), at=at)


@dataclass
class _Monitor:
    """What the API reads of a monitor: a snapshot to swap; no database."""

    snapshot: Snapshot
    clock: FakeClock = field(default_factory=FakeClock)
    history: None = None

    def readiness(self) -> Ready:
        return Ready()


@pytest.fixture
async def served(aiohttp_client: Client) -> tuple[TestClient[Any, Any], _Monitor]:
    monitor = _Monitor(_answers())
    client: TestClient[Any, Any] = await aiohttp_client(make_app(cast(Readout, monitor)))
    return client, monitor


Served = tuple[TestClient[Any, Any], _Monitor]


async def test_an_unchanged_answer_costs_a_304_without_a_body(served: Served) -> None:
    client, _ = served
    first = await client.get("/v1/best/m")
    etag = first.headers["ETag"]
    again = await client.get("/v1/best/m", headers={"If-None-Match": etag})
    assert again.status == 304 and await again.read() == b""
    assert again.headers["ETag"] == etag and again.headers["Cache-Control"] == f"max-age={MAX_AGE_S}"
    assert again.headers["Vary"] == "Accept-Encoding"


async def test_a_best_answer_keeps_its_etag_while_only_measurements_move(served: Served) -> None:
    client, monitor = served
    etag = (await client.get("/v1/best/m")).headers["ETag"]
    monitor.snapshot = _answers(a_ttft=12.5, at=NOW + 2)
    assert etag.startswith('W/"')
    assert (await client.get("/v1/best/m", headers={"If-None-Match": etag})).status == 304


async def test_the_best_of_every_model_keeps_its_etag_while_only_measurements_move(served: Served) -> None:
    client, monitor = served
    etag = (await client.get("/v1/best")).headers["ETag"]
    monitor.snapshot = _answers(a_ttft=12.5, at=NOW + 2)
    assert etag.startswith('W/"')
    assert (await client.get("/v1/best", headers={"If-None-Match": etag})).status == 304


async def test_a_new_best_host_changes_the_etag(served: Served) -> None:
    client, monitor = served
    etag = (await client.get("/v1/best/m")).headers["ETag"]
    monitor.snapshot = snapshot(model("m", [host("m", B), host("m", A)]), at=NOW + 2)
    changed = await client.get("/v1/best/m", headers={"If-None-Match": etag})
    assert changed.status == 200 and changed.headers["ETag"] != etag
    assert (await changed.json())["host"] == B


async def test_a_host_going_down_changes_the_etag_of_every_best_answer(served: Served) -> None:
    client, monitor = served
    one, every = (
        (await client.get("/v1/best/m")).headers["ETag"],
        (await client.get("/v1/best")).headers["ETag"],
    )
    monitor.snapshot = _answers(a_state=HostState.DOWN, at=NOW + 2)
    assert (await client.get("/v1/best/m", headers={"If-None-Match": one})).status == 200
    assert (await client.get("/v1/best", headers={"If-None-Match": every})).status == 200


async def test_the_gzipped_and_plain_answers_validate_each_other(served: Served) -> None:
    client, _ = served
    plain = await client.get("/v1/best/m", headers={"Accept-Encoding": "identity"})
    zipped = await client.get("/v1/best/m", headers={"Accept-Encoding": "gzip"})
    assert "Content-Encoding" not in plain.headers and zipped.headers["Content-Encoding"] == "gzip"
    assert plain.headers["ETag"] == zipped.headers["ETag"]


async def test_hosts_get_a_strong_etag_over_the_exact_bytes(served: Served) -> None:
    client, monitor = served
    etag = (await client.get("/v1/hosts")).headers["ETag"]
    assert not etag.startswith("W/")
    monitor.snapshot = _answers(at=NOW + 2)  # only generated_at differs
    assert (await client.get("/v1/hosts", headers={"If-None-Match": etag})).status == 200


async def test_the_models_list_gets_a_strong_etag_and_a_304(served: Served) -> None:
    client, _ = served
    etag = (await client.get("/libertai/models")).headers["ETag"]
    again = await client.get("/libertai/models", headers={"If-None-Match": etag})
    assert not etag.startswith("W/") and again.status == 304


async def test_a_browser_on_another_origin_may_read_the_answers_and_errors(served: Served) -> None:
    client, _ = served
    ok = await client.get("/v1/best/m", headers={"Origin": "https://status.example"})
    missing = await client.get("/v1/best/nope")
    assert (
        ok.headers["Access-Control-Allow-Origin"] == "*"
        and "ETag" in ok.headers["Access-Control-Expose-Headers"]
    )
    assert missing.status == 404 and missing.headers["Access-Control-Allow-Origin"] == "*"
    assert "ETag" not in missing.headers and "Cache-Control" not in missing.headers


async def test_a_bad_sort_is_refused_without_a_validator(served: Served) -> None:
    client, _ = served
    resp = await client.get("/v1/best/m?sort=latency")
    assert resp.status == 422 and resp.headers["Access-Control-Allow-Origin"] == "*"
    assert "ETag" not in resp.headers


async def test_a_preflight_is_answered(served: Served) -> None:
    client, _ = served
    resp = await client.options("/v1/best/m", headers={"Access-Control-Request-Method": "GET"})
    assert resp.status == 204 and "GET" in resp.headers["Access-Control-Allow-Methods"]
    assert "If-None-Match" in resp.headers["Access-Control-Allow-Headers"]


async def test_other_routes_are_left_alone(served: Served) -> None:
    client, _ = served
    resp = await client.get("/healthz")
    assert "ETag" not in resp.headers and "Access-Control-Allow-Origin" not in resp.headers


def test_if_none_match_compares_weakly_and_accepts_lists_and_star() -> None:
    assert matches('"x", W/"abc"', '"abc"') and matches("*", 'W/"q"')
    assert not matches('"abd"', '"abc"') and not matches(None, '"abc"')


def _etag(snap: Snapshot, key: AnswerKey, gzipped: bool = False) -> str:
    answer = finish(snap.answer(key, gzipped))
    assert answer is not None
    return answer.etag


def test_the_weak_etag_ignores_generated_at_and_host_measurements() -> None:
    a, b = _answers(a_ttft=1.0), _answers(a_ttft=9.0, at=NOW + 9)
    key = AnswerKey.best("m")
    assert _etag(a, key) == _etag(b, key) == _etag(b, key, gzipped=True)


def test_the_weak_etag_follows_the_choice_the_sort_makes() -> None:
    by_ttft, by_throughput = AnswerKey.best("m"), AnswerKey.best("m", Sort.THROUGHPUT)
    fast = replace(_answers().models["m"], eligible=(A, B))
    hosts = (replace(fast.hosts[0], tokens_per_s=10.0), replace(fast.hosts[1], tokens_per_s=90.0))
    snap = snapshot(replace(fast, hosts=hosts))
    assert _etag(snap, by_ttft) != _etag(snap, by_throughput)


def test_a_snapshot_of_another_vantage_has_its_own_etags() -> None:
    here, there = _answers(), replace(_answers(), vantage="eu")
    assert _etag(here, AnswerKey.best()) != _etag(there, AnswerKey.best())
    assert _etag(here, HOSTS) != _etag(there, HOSTS)


def test_an_answer_key_takes_a_model_or_a_sort_only_for_best() -> None:
    with pytest.raises(ValueError):
        replace(HOSTS, model="m")
    with pytest.raises(ValueError):
        replace(HOSTS, sort=Sort.THROUGHPUT)
    assert AnswerKey.best("m", Sort.THROUGHPUT) == AnswerKey.best("m", Sort("throughput"))
