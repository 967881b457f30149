"""Every probe outcome, produced against real loopback servers (see conftest `fake_hosts`)."""

from __future__ import annotations

import asyncio
import gc
import json
import re
import socket
import time
from collections.abc import Callable
from typing import Any

import aiohttp
import aiohttp.abc
import pytest

from monitor.core.results import Outcome, ProbeKind
from monitor.core.urls import AllowList
from monitor.probe.http import make_session
from monitor.probe.prober import Prober

MODEL = "hermes-3-8b"
MakeProber = Callable[..., Prober]


async def test_health_ok_sends_no_key(fake_hosts: Any, make_prober: MakeProber) -> None:
    r = await make_prober().health(fake_hosts.url("ok"), MODEL)
    assert r.outcome is Outcome.OK and r.status == 200 and r.kind is ProbeKind.HEALTH
    assert r.total_ms is not None and r.total_ms > 0 and r.ttft_ms is None
    (seen,) = fake_hosts.requests_to("ok")
    assert seen.method == "GET" and seen.path == f"/ok/health/{MODEL}"
    assert "Authorization" not in seen.headers


async def test_health_202_is_not_loaded(fake_hosts: Any, make_prober: MakeProber) -> None:
    r = await make_prober().health(fake_hosts.url("status202"), MODEL)
    assert r.outcome is Outcome.NOT_LOADED and r.status == 202


async def test_health_404_is_unknown_model(fake_hosts: Any, make_prober: MakeProber) -> None:
    r = await make_prober().health(fake_hosts.url("status404"), MODEL)
    assert r.outcome is Outcome.UNKNOWN_MODEL


async def test_health_model_id_is_quoted_into_one_path_segment(
    fake_hosts: Any, make_prober: MakeProber
) -> None:
    await make_prober().health(fake_hosts.url("ok"), "../../x?y")
    (seen,) = fake_hosts.requests_to("ok")
    assert seen.raw_path == "/ok/health/..%2F..%2Fx%3Fy"


async def test_auth_ok_sends_bearer_key(fake_hosts: Any, make_prober: MakeProber, api_key: Any) -> None:
    r = await make_prober().auth(fake_hosts.url("ok"), MODEL)
    assert r.outcome is Outcome.OK
    (seen,) = fake_hosts.requests_to("ok")
    assert seen.path == "/ok/libertai/auth/check"
    assert seen.headers["Authorization"] == f"Bearer {api_key.reveal()}"


@pytest.mark.parametrize("status", [404, 405])
async def test_auth_404_405_is_unsupported(fake_hosts: Any, make_prober: MakeProber, status: int) -> None:
    r = await make_prober().auth(fake_hosts.url(f"status{status}"), MODEL)
    assert r.outcome is Outcome.UNSUPPORTED and r.status == status


@pytest.mark.parametrize("status", [401, 403])
async def test_completion_401_403_is_key_rejected(
    fake_hosts: Any, make_prober: MakeProber, status: int
) -> None:
    r = await make_prober().completion(fake_hosts.url(f"status{status}"), MODEL)
    assert r.outcome is Outcome.KEY_REJECTED and r.detail == f"HTTP {status}: status {status} here"


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (402, Outcome.PAYMENT_REQUIRED),
        (404, Outcome.UNKNOWN_MODEL),
        (422, Outcome.INVALID_REQUEST),
        (400, Outcome.INVALID_REQUEST),
        (429, Outcome.RATE_LIMITED),
        (500, Outcome.SERVER_ERROR),
        (503, Outcome.SERVER_ERROR),
    ],
)
async def test_completion_error_status(
    fake_hosts: Any, make_prober: MakeProber, status: int, outcome: Outcome
) -> None:
    r = await make_prober().completion(fake_hosts.url(f"status{status}"), MODEL)
    assert r.outcome is outcome and r.status == status and r.ttft_ms is None


async def test_html_error_body_still_classified_by_status(fake_hosts: Any, make_prober: MakeProber) -> None:
    r = await make_prober().completion(fake_hosts.url("html503"), MODEL)
    assert r.outcome is Outcome.SERVER_ERROR and r.detail == "HTTP 503"


async def test_completion_ok_sends_one_token_stream_request(
    fake_hosts: Any, make_prober: MakeProber, api_key: Any
) -> None:
    r = await make_prober().completion(fake_hosts.url("ok"), MODEL)
    assert r.outcome is Outcome.OK and r.status == 200 and r.detail == ""
    (seen,) = fake_hosts.requests_to("ok")
    assert seen.method == "POST" and seen.path == "/ok/v1/chat/completions"
    assert seen.headers["Authorization"] == f"Bearer {api_key.reveal()}"
    body = json.loads(seen.body)
    prompt = body["messages"][0]["content"]
    assert re.fullmatch(r"[0-9a-f]{10} ping", prompt)  # a fresh nonce first
    assert body == {
        "model": MODEL,
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": 1,
        "temperature": 0,
        "stream": True,
        "stream_options": {"include_usage": True},
    }


async def test_completion_probes_never_repeat_a_prompt(fake_hosts: Any, make_prober: MakeProber) -> None:
    prober = make_prober()
    for _ in range(3):
        await prober.completion(fake_hosts.url("ok"), MODEL)
    prompts = {json.loads(r.body)["messages"][0]["content"] for r in fake_hosts.requests_to("ok")}
    assert len(prompts) == 3


async def test_completion_probe_of_a_reasoning_model_turns_thinking_off(
    fake_hosts: Any, make_prober: MakeProber
) -> None:
    await make_prober().completion(fake_hosts.url("ok"), MODEL, reasoning=True)
    (seen,) = fake_hosts.requests_to("ok")
    body = json.loads(seen.body)
    assert body["chat_template_kwargs"] == {"enable_thinking": False}
    assert body["max_tokens"] == 1 and body["temperature"] == 0


async def test_completion_ttft_measures_delay_before_first_chunk(
    fake_hosts: Any, make_prober: MakeProber
) -> None:
    fake_hosts.first_chunk_delay = 0.3
    r = await make_prober().completion(fake_hosts.url("ok"), MODEL)
    assert r.outcome is Outcome.OK
    assert r.ttft_ms is not None and 300.0 <= r.ttft_ms < 600.0
    assert r.total_ms is not None and r.total_ms >= r.ttft_ms


async def test_connect_ms_measured_then_zero_on_reused_connection(
    fake_hosts: Any, make_prober: MakeProber
) -> None:
    prober = make_prober()
    first = await prober.health(fake_hosts.url("ok"), MODEL)
    second = await prober.health(fake_hosts.url("ok"), MODEL)
    assert first.connect_ms is not None and 0.0 < first.connect_ms < 1000.0
    assert second.connect_ms == 0.0


async def test_html_200_completion_is_bad_response(fake_hosts: Any, make_prober: MakeProber) -> None:
    r = await make_prober().completion(fake_hosts.url("html"), MODEL)
    assert r.outcome is Outcome.BAD_RESPONSE and r.status == 200


async def test_json_200_instead_of_stream_is_bad_response(fake_hosts: Any, make_prober: MakeProber) -> None:
    r = await make_prober().completion(fake_hosts.url("jsonbody"), MODEL)
    assert r.outcome is Outcome.BAD_RESPONSE


async def test_unparseable_chunk_is_bad_response(fake_hosts: Any, make_prober: MakeProber) -> None:
    r = await make_prober().completion(fake_hosts.url("garbage"), MODEL)
    assert r.outcome is Outcome.BAD_RESPONSE and r.detail == "unparseable stream chunk"


@pytest.mark.parametrize("kind", list(ProbeKind))
async def test_redirect_is_bad_response_and_not_followed(
    fake_hosts: Any, make_prober: MakeProber, kind: ProbeKind
) -> None:
    r = await make_prober().probe(kind, fake_hosts.url("redirect"), MODEL)
    assert r.outcome is Outcome.BAD_RESPONSE and r.status == 302
    assert r.detail == "HTTP 302: redirect not followed"
    assert fake_hosts.requests_to("redirect") and not fake_hosts.requests_to("target")


async def test_error_event_is_stream_error(fake_hosts: Any, make_prober: MakeProber) -> None:
    r = await make_prober().completion(fake_hosts.url("errevent"), MODEL)
    assert r.outcome is Outcome.STREAM_ERROR and r.detail == "error event: CUDA OOM"
    assert r.ttft_ms is not None


async def test_stream_ending_without_done_is_stream_error(fake_hosts: Any, make_prober: MakeProber) -> None:
    r = await make_prober().completion(fake_hosts.url("nodone"), MODEL)
    assert r.outcome is Outcome.STREAM_ERROR and r.detail == "stream ended without [DONE]"


async def test_cut_stream_is_stream_error(fake_hosts: Any, make_prober: MakeProber) -> None:
    r = await make_prober().completion(fake_hosts.url("cut"), MODEL)
    assert r.outcome is Outcome.STREAM_ERROR
    assert r.detail.startswith("stream") and r.ttft_ms is not None


async def test_endless_fast_stream_stops_at_byte_bound(fake_hosts: Any, make_prober: MakeProber) -> None:
    r = await make_prober(timeout=5.0, max_body_bytes=16 * 1024).completion(fake_hosts.url("endless"), MODEL)
    # Ended by the byte bound, not by the 5 s timeout (whose outcome would be a timeout).
    assert r.outcome is Outcome.BAD_RESPONSE and r.detail == "stream exceeds 16384 bytes"


async def test_endless_trickling_stream_ends_within_timeout(fake_hosts: Any, make_prober: MakeProber) -> None:
    t0 = time.perf_counter()
    r = await make_prober(timeout=0.5).completion(fake_hosts.url("trickle"), MODEL)
    elapsed = time.perf_counter() - t0
    assert r.outcome is Outcome.STREAM_ERROR and r.detail == "stream unfinished at timeout"
    assert 0.5 <= elapsed < 0.5 + 3.0 and r.ttft_ms is not None  # generous: a busy machine adds


@pytest.mark.parametrize("kind", list(ProbeKind))
async def test_hanging_server_is_timeout(fake_hosts: Any, make_prober: MakeProber, kind: ProbeKind) -> None:
    t0 = time.perf_counter()
    r = await make_prober(timeout=0.3).probe(kind, fake_hosts.url("hang"), MODEL)
    assert r.outcome is Outcome.TIMEOUT and r.status is None
    assert time.perf_counter() - t0 < 1.3


async def test_headers_then_no_token_is_timeout(fake_hosts: Any, make_prober: MakeProber) -> None:
    r = await make_prober(timeout=0.3).completion(fake_hosts.url("slowheaders200"), MODEL)
    assert r.outcome is Outcome.TIMEOUT and r.status == 200 and r.ttft_ms is None


async def test_error_status_with_hanging_body_keeps_status_outcome(
    fake_hosts: Any, make_prober: MakeProber
) -> None:
    r = await make_prober(timeout=0.3).completion(fake_hosts.url("slowbody503"), MODEL)
    assert r.outcome is Outcome.SERVER_ERROR and r.detail == "HTTP 503"


async def test_health_200_with_hanging_body_is_ok_within_timeout(
    fake_hosts: Any, make_prober: MakeProber
) -> None:
    r = await make_prober(timeout=0.3).health(fake_hosts.url("slowbody200"), MODEL)
    assert r.outcome is Outcome.OK and r.total_ms is not None and r.total_ms < 800


async def test_embedding_200_with_hanging_body_is_timeout(fake_hosts: Any, make_prober: MakeProber) -> None:
    r = await make_prober(timeout=0.3).embedding(fake_hosts.url("slowbody200"), "bge-m3")
    assert r.outcome is Outcome.TIMEOUT and r.status == 200


async def test_closed_port_is_connect_error(make_prober: MakeProber, closed_port: int) -> None:
    r = await make_prober().health(f"http://127.0.0.1:{closed_port}", MODEL)
    assert r.outcome is Outcome.CONNECT_ERROR and r.status is None
    assert r.detail.startswith("ClientConnectorError")


class _FailingResolver(aiohttp.abc.AbstractResolver):
    """A resolver that fails every look-up at once, as getaddrinfo does for an unknown name."""

    async def resolve(self, host: str, port: int = 0, family: int = socket.AF_INET) -> list[Any]:
        raise OSError(socket.EAI_NONAME, "Name or service not known")

    async def close(self) -> None:
        return None


async def test_unresolvable_host_is_connect_error(make_prober: MakeProber) -> None:
    connector = aiohttp.TCPConnector(resolver=_FailingResolver())
    async with aiohttp.ClientSession(connector=connector) as session:
        prober = make_prober(sess=session, allow=AllowList.parse("http://*.invalid:*"))
        r = await prober.health("http://no-such.invalid", MODEL)
    assert r.outcome is Outcome.CONNECT_ERROR and r.detail.startswith("ClientConnectorDNSError")


async def test_untrusted_host_is_not_probed_and_not_contacted(
    fake_hosts: Any, make_prober: MakeProber
) -> None:
    prober = make_prober(allow=AllowList.parse("https://*.libertai.io"))
    for kind in ProbeKind:
        r = await prober.probe(kind, fake_hosts.url("ok"), MODEL)
        assert r.outcome is Outcome.NOT_PROBED and r.status is None
    assert fake_hosts.seen == []


async def test_self_signed_certificate_is_tls_error(tls_hosts: Any, make_prober: MakeProber) -> None:
    r = await make_prober().health(tls_hosts.url("ok"), MODEL)
    assert r.outcome is Outcome.TLS_ERROR and r.detail.startswith("ClientConnector")
    assert tls_hosts.seen == []


async def test_ca_bundle_makes_self_signed_host_ok(tls_hosts: Any, tls: Any, make_prober: MakeProber) -> None:
    session = make_session(ca_bundle=tls.ca_file, limit=4, user_agent="t")
    try:
        r = await make_prober(sess=session).completion(tls_hosts.url("ok"), MODEL)
    finally:
        await session.close()
    assert r.outcome is Outcome.OK and r.connect_ms is not None and r.connect_ms > 0


async def test_embedding_ok(fake_hosts: Any, make_prober: MakeProber) -> None:
    r = await make_prober().embedding(fake_hosts.url("ok"), "bge-m3")
    assert r.outcome is Outcome.OK
    (seen,) = fake_hosts.requests_to("ok")
    assert seen.path == "/ok/v1/embeddings" and json.loads(seen.body) == {"model": "bge-m3", "input": "ping"}


async def test_embedding_wrong_shape_is_bad_response(fake_hosts: Any, make_prober: MakeProber) -> None:
    r = await make_prober().embedding(fake_hosts.url("badembedding"), "bge-m3")
    assert r.outcome is Outcome.BAD_RESPONSE


async def test_embedding_over_bound_is_bad_response(fake_hosts: Any, make_prober: MakeProber) -> None:
    r = await make_prober(max_embedding_bytes=64 * 1024).embedding(fake_hosts.url("huge"), "bge-m3")
    assert r.outcome is Outcome.BAD_RESPONSE and "exceeds" in r.detail


async def test_embedding_html_200_is_bad_response(fake_hosts: Any, make_prober: MakeProber) -> None:
    r = await make_prober().embedding(fake_hosts.url("html"), "bge-m3")
    assert r.outcome is Outcome.BAD_RESPONSE


async def test_probe_propagates_cancellation(fake_hosts: Any, make_prober: MakeProber) -> None:
    task = asyncio.create_task(make_prober(timeout=5.0).completion(fake_hosts.url("hang"), MODEL))
    await asyncio.sleep(0.1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_many_concurrent_probes_share_the_session(fake_hosts: Any, make_prober: MakeProber) -> None:
    prober = make_prober()
    results = await asyncio.gather(*(prober.health(fake_hosts.url("ok"), f"m{i}") for i in range(50)))
    assert all(r.outcome is Outcome.OK for r in results)


def test_session_has_no_cookie_jar_and_no_default_timeout() -> None:
    async def build() -> aiohttp.ClientSession:
        return make_session(ca_bundle=None, limit=10, user_agent="ua/1")

    async def check() -> None:
        s = await build()
        try:
            assert isinstance(s.cookie_jar, aiohttp.DummyCookieJar)
            assert s.timeout.total is None and s.timeout.sock_connect is None
            assert s.headers["User-Agent"] == "ua/1"
            assert s.connector is not None and s.connector.limit == 10
        finally:
            await s.close()

    asyncio.run(check())


def test_make_session_rejects_missing_ca_bundle(tmp_path: Any) -> None:
    async def check() -> None:
        with pytest.raises(ValueError, match="CA bundle"):
            make_session(ca_bundle=str(tmp_path / "nope.pem"), limit=1, user_agent="t")

    asyncio.run(check())


async def test_a_refused_probe_leaves_no_garbage_for_the_collector(
    make_prober: MakeProber, closed_port: int
) -> None:
    prober = make_prober()
    await prober.health(f"http://127.0.0.1:{closed_port}", MODEL)  # connector set up, modules loaded
    gc.collect()
    gc.disable()
    try:
        for _ in range(20):
            r = await prober.health(f"http://127.0.0.1:{closed_port}", MODEL)
            assert r.outcome is Outcome.CONNECT_ERROR
        cyclic = gc.collect()  # objects only the collector could free
    finally:
        gc.enable()
    assert cyclic < 20  # was 81 per refused probe: their tracebacks, frames and futures
