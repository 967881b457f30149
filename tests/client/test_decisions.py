"""The pure parts of the client: reading the monitor's answer, host order, which answers are passed
over, the body a host gets, and when the monitor is read again (on a fake clock)."""

from __future__ import annotations

import json
import threading

import httpx2
import pytest

from libertai_failover.answers import Answer, parse_answer
from libertai_failover.cache import AnswerCache, Want
from libertai_failover.rules import (
    error_reason,
    host_body,
    order_hosts,
    read_model,
    retry_reason,
    status_reason,
)
from monitor.core.clock import FakeClock
from monitor.core.results import Outcome
from monitor.core.urls import AllowList
from tests.client.support import answer

A, B, C = "https://a.libertai.io", "https://b.libertai.io", "https://c.libertai.io"
ANY = AllowList.parse("https://*.libertai.io")


def _answer(order: tuple[str, ...], up: tuple[str, ...] | None = None) -> Answer:
    return Answer("m", order, frozenset(order if up is None else up), "m")


def test_hosts_are_tried_best_first_then_fallbacks() -> None:
    assert order_hosts(_answer((A, B, C)), None, set(), ANY.admits) == (A, B, C)


def test_the_sticky_host_comes_first_while_the_monitor_sees_it_up() -> None:
    assert order_hosts(_answer((A, B, C)), C, set(), ANY.admits) == (C, A, B)


def test_a_sticky_host_the_monitor_sees_down_or_no_longer_lists_is_not_preferred() -> None:
    assert order_hosts(_answer((A, B, C), up=(A, B)), C, set(), ANY.admits) == (A, B, C)
    assert order_hosts(_answer((A, B)), C, set(), ANY.admits) == (A, B)


def test_a_host_that_just_failed_here_is_tried_after_the_others() -> None:
    assert order_hosts(_answer((A, B, C)), A, {A}, ANY.admits) == (B, C, A)


def test_hosts_outside_the_allow_list_are_never_tried() -> None:
    evil = "https://evil.example"
    assert order_hosts(_answer((evil, A)), evil, set(), ANY.admits) == (A,)


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        (500, Outcome.SERVER_ERROR),
        (503, Outcome.SERVER_ERROR),
        (429, Outcome.RATE_LIMITED),
        (401, Outcome.KEY_REJECTED),
        (403, Outcome.KEY_REJECTED),
        (307, Outcome.BAD_RESPONSE),
    ],
)
def test_answers_passed_over(status: int, reason: Outcome) -> None:
    assert retry_reason(status) is reason


@pytest.mark.parametrize("status", [200, 400, 402, 404, 408, 413, 422])
def test_answers_given_to_the_caller(status: int) -> None:
    assert retry_reason(status) is None


def test_a_408_is_the_host_timing_the_request_out() -> None:
    assert status_reason(408) is Outcome.TIMEOUT


def test_transport_errors_are_named() -> None:
    assert error_reason(httpx2.ConnectTimeout("x")) is Outcome.TIMEOUT
    assert error_reason(httpx2.ReadTimeout("x")) is Outcome.TIMEOUT
    assert error_reason(httpx2.ConnectError("refused")) is Outcome.CONNECT_ERROR


def test_a_host_gets_the_upstream_id_and_the_answers_fields_under_the_callers_own() -> None:
    body = {"model": "m-thinking", "messages": [], "chat_template_kwargs": {"x": 1}}
    fields = {"chat_template_kwargs": {"enable_thinking": True, "x": 2}, "top_k": 5}
    sent = json.loads(host_body(body, "m", fields))
    assert sent == {
        "model": "m",
        "messages": [],
        "chat_template_kwargs": {"enable_thinking": True, "x": 1},
        "top_k": 5,
    }
    assert body["model"] == "m-thinking"  # the caller's body is left as it was


def test_only_json_bodies_with_a_model_are_routed() -> None:
    assert read_model("application/json", b'{"model": "m", "n": 1}') == ("m", {"model": "m", "n": 1})
    for content_type, body in [
        ("application/json", b'{"input": "x"}'),
        ("application/json", b"[1]"),
        ("application/json", b"{bad"),
        ("multipart/form-data", b'{"model": "m"}'),
        ("application/json", b""),
    ]:
        assert read_model(content_type, body) is None


def test_an_answer_is_validated_where_it_enters() -> None:
    data = answer(
        "m", A, ["not a url", B, A], upstream_model="base", request_fields={"model": "x", "stream": 1, "k": 2}
    )
    got = parse_answer("m", json.dumps(data).encode())
    assert got.order == (A, B) and got.upstream_model == "base" and got.request_fields == {"k": 2}
    with pytest.raises(ValueError):
        parse_answer("other", json.dumps(data).encode())
    with pytest.raises(ValueError):
        parse_answer("m", b"<html>")


def test_without_upstream_fields_the_model_id_is_sent_as_is() -> None:
    got = parse_answer("m", json.dumps(answer("m", A)).encode())
    assert got.upstream_model == "m" and got.request_fields == {}


def _cache(clock: FakeClock, refresh: float = 5.0) -> AnswerCache:
    return AnswerCache("http://monitor", refresh, clock, threading.Event)


async def test_the_first_request_fetches_and_others_wait_for_it() -> None:
    cache = _cache(FakeClock())
    want, fetch, ready = cache.want("m")
    assert want is Want.FETCH_AND_WAIT and fetch is not None
    assert fetch.url == "http://monitor/v1/best/m"
    assert cache.want("m")[0] is Want.WAIT
    cache.got(fetch, 200, 'W/"1"', json.dumps(answer("m", A)).encode())
    assert ready.is_set() and cache.current("m") is not None


async def test_a_stale_answer_is_refreshed_in_the_background_at_most_once_per_refresh() -> None:
    clock = FakeClock()
    cache = _cache(clock)
    _, fetch, _ = cache.want("m")
    assert fetch is not None
    cache.got(fetch, 200, 'W/"1"', json.dumps(answer("m", A)).encode())
    await clock.advance(4.9)
    assert cache.want("m")[0] is Want.NOTHING
    await clock.advance(0.1)
    want, again, _ = cache.want("m")
    assert want is Want.BACKGROUND and again is not None and again.headers["If-None-Match"] == 'W/"1"'
    assert cache.want("m")[0] is Want.NOTHING  # one refresh in flight at a time
    cache.failed(again)
    assert cache.current("m") is not None  # the monitor failed: the last answer stays
    assert cache.want("m")[0] is Want.NOTHING  # and a failure also waits `refresh` before the next try


async def test_a_304_keeps_the_answer_and_a_404_sends_the_model_to_the_gateway() -> None:
    clock = FakeClock()
    cache = _cache(clock, refresh=1)
    _, fetch, _ = cache.want("m")
    assert fetch is not None
    cache.got(fetch, 200, 'W/"1"', json.dumps(answer("m", A)).encode())
    await clock.advance(1)
    _, fetch, _ = cache.want("m")
    assert fetch is not None
    cache.got(fetch, 304, None, b"")
    assert cache.current("m") is not None
    await clock.advance(1)
    _, fetch, _ = cache.want("m")
    assert fetch is not None
    cache.got(fetch, 404, None, b'{"detail": "Unknown model m"}')
    assert cache.current("m") is None
