"""Pure helpers: classify_status for every status class and kind, SSE interpretation, sanitising."""

from __future__ import annotations

import json

import pytest

from monitor.client.rules import status_reason
from monitor.core.results import Outcome, ProbeKind
from monitor.probe.answers import SseEvent, SseStream, interpret_sse_line, valid_embedding
from monitor.probe.classify import classify_status, error_detail, sanitise_detail

H, A, C, E, T = (
    ProbeKind.HEALTH,
    ProbeKind.AUTH,
    ProbeKind.COMPLETION,
    ProbeKind.EMBEDDING,
    ProbeKind.THROUGHPUT,
)
ALL = (H, A, C, E, T)


@pytest.mark.parametrize("kind", ALL)
def test_classify_200_is_ok(kind: ProbeKind) -> None:
    assert classify_status(200, kind) is Outcome.OK


def test_classify_202_health_is_not_loaded() -> None:
    assert classify_status(202, H) is Outcome.NOT_LOADED


@pytest.mark.parametrize("kind", (A, C, E, T))
def test_classify_202_elsewhere_is_bad_response(kind: ProbeKind) -> None:
    assert classify_status(202, kind) is Outcome.BAD_RESPONSE


@pytest.mark.parametrize("kind", ALL)
@pytest.mark.parametrize("status", [100, 201, 204, 301, 302, 307, 308, 0, 99, 600, 999])
def test_classify_unexpected_non_error_status_is_bad_response(status: int, kind: ProbeKind) -> None:
    assert classify_status(status, kind) is Outcome.BAD_RESPONSE


@pytest.mark.parametrize("kind", (A, C, E, T))
@pytest.mark.parametrize("status", [401, 403])
def test_classify_401_403_is_key_rejected(status: int, kind: ProbeKind) -> None:
    assert classify_status(status, kind) is Outcome.KEY_REJECTED


@pytest.mark.parametrize("status", [401, 403])
def test_classify_401_403_on_keyless_health_is_invalid_request(status: int) -> None:
    assert classify_status(status, H) is Outcome.INVALID_REQUEST


@pytest.mark.parametrize("kind", ALL)
def test_classify_402_is_payment_required(kind: ProbeKind) -> None:
    assert classify_status(402, kind) is Outcome.PAYMENT_REQUIRED


@pytest.mark.parametrize("kind", (H, C, E, T))
def test_classify_404_is_unknown_model(kind: ProbeKind) -> None:
    assert classify_status(404, kind) is Outcome.UNKNOWN_MODEL


@pytest.mark.parametrize("status", [404, 405])
def test_classify_auth_404_405_is_unsupported(status: int) -> None:
    assert classify_status(status, A) is Outcome.UNSUPPORTED


@pytest.mark.parametrize("kind", (H, C, E, T))
def test_classify_405_elsewhere_is_invalid_request(kind: ProbeKind) -> None:
    assert classify_status(405, kind) is Outcome.INVALID_REQUEST


@pytest.mark.parametrize("kind", ALL)
def test_classify_408_is_timeout(kind: ProbeKind) -> None:
    assert classify_status(408, kind) is Outcome.TIMEOUT


@pytest.mark.parametrize("status", range(400, 600))
def test_the_client_reads_an_error_status_as_the_completion_probe_does(status: int) -> None:
    assert status_reason(status) is classify_status(status, C)


@pytest.mark.parametrize("kind", ALL)
@pytest.mark.parametrize("status", [400, 409, 413, 418, 422, 451, 499])
def test_classify_other_4xx_is_invalid_request(status: int, kind: ProbeKind) -> None:
    assert classify_status(status, kind) is Outcome.INVALID_REQUEST


@pytest.mark.parametrize("kind", ALL)
def test_classify_429_is_rate_limited(kind: ProbeKind) -> None:
    assert classify_status(429, kind) is Outcome.RATE_LIMITED


@pytest.mark.parametrize("kind", ALL)
@pytest.mark.parametrize("status", [500, 502, 503, 504, 599])
def test_classify_5xx_is_server_error(status: int, kind: ProbeKind) -> None:
    assert classify_status(status, kind) is Outcome.SERVER_ERROR


# --------------------------------------------------------------------------- SSE lines

TOKEN = b'data: {"choices":[{"index":0,"delta":{"content":"p"}}]}'


@pytest.mark.parametrize(
    ("line", "event"),
    [
        (b"", SseEvent.IGNORE),
        (b"\r", SseEvent.IGNORE),
        (b": keep-alive", SseEvent.IGNORE),
        (b"event: message", SseEvent.IGNORE),
        (b"id: 3", SseEvent.IGNORE),
        (TOKEN, SseEvent.TOKEN),
        (TOKEN + b"\r", SseEvent.TOKEN),
        (b'data:{"choices":[{"delta":{"role":"assistant"}}]}', SseEvent.TOKEN),
        (b'data: {"choices":[],"usage":{"total_tokens":2}}', SseEvent.CHUNK),
        (b'data: {"usage":{}}', SseEvent.CHUNK),
        (b"data: [DONE]", SseEvent.DONE),
        (b"data: [DONE]\r", SseEvent.DONE),
        (b'data: {"error":{"message":"boom"}}', SseEvent.ERROR),
        (b'data: {"error":"boom"}', SseEvent.ERROR),
        (b"data: {nope", SseEvent.MALFORMED),
        (b"data: [1,2]", SseEvent.MALFORMED),
        (b"data: \xff\xfe", SseEvent.MALFORMED),
        (b'data: {"choices":"x"}', SseEvent.MALFORMED),
    ],
)
def test_interpret_sse_line(line: bytes, event: SseEvent) -> None:
    assert interpret_sse_line(line)[0] is event


def feed_all(lines: list[bytes]) -> SseStream:
    stream = SseStream("sk-secret-value-123")
    for line in lines:
        if stream.feed(line):
            break
    else:
        stream.end()
    return stream


def test_stream_ok_at_done_after_token() -> None:
    s = feed_all([TOKEN, b"", b'data: {"choices":[],"usage":{}}', b"", b"data: [DONE]"])
    assert (s.outcome, s.tokens) == (Outcome.OK, 1)


def test_stream_done_without_any_choice_is_bad_response() -> None:
    s = feed_all([b'data: {"choices":[]}', b"data: [DONE]"])
    assert s.outcome is Outcome.BAD_RESPONSE


def test_stream_error_event_is_stream_error() -> None:
    s = feed_all([TOKEN, b'data: {"error":{"message":"CUDA out of memory"}}', b"data: [DONE]"])
    assert s.outcome is Outcome.STREAM_ERROR and "CUDA out of memory" in s.detail


def test_stream_end_without_done_is_stream_error() -> None:
    s = feed_all([TOKEN])
    assert s.outcome is Outcome.STREAM_ERROR and s.detail == "stream ended without [DONE]"


def test_stream_unparseable_chunk_is_bad_response() -> None:
    s = feed_all([TOKEN, b"data: <html>", b"data: [DONE]"])
    assert s.outcome is Outcome.BAD_RESPONSE


def test_stream_error_event_detail_hides_key() -> None:
    s = feed_all([b'data: {"error":{"message":"bad key Bearer sk-secret-value-123"}}'])
    assert "sk-secret-value-123" not in s.detail and "secret-v" not in s.detail


# --------------------------------------------------------------------------- details

KEY = "sk-live-0123456789abcdefXYZ"


def test_sanitise_removes_key_bearer_and_fragments() -> None:
    text = f"key {KEY} header Authorization: Bearer {KEY} part {KEY[3:15]} api_key={KEY[:9]}"
    clean = sanitise_detail(text, KEY)
    for i in range(len(KEY) - 7):
        assert KEY[i : i + 8] not in clean


def test_sanitise_truncates_and_flattens() -> None:
    clean = sanitise_detail("line1\nline2\t" + "x" * 500)
    assert len(clean) <= 120 and "\n" not in clean and clean.startswith("line1 line2")


def test_error_detail_quotes_json_detail() -> None:
    assert error_detail(401, b'{"detail": "Invalid API key"}') == "HTTP 401: Invalid API key"


def test_error_detail_quotes_openai_error_message() -> None:
    assert (
        error_detail(429, json.dumps({"error": {"message": "slow down"}}).encode()) == "HTTP 429: slow down"
    )


def test_error_detail_fastapi_validation_list() -> None:
    body = json.dumps({"detail": [{"loc": ["body"], "msg": "field required"}]}).encode()
    assert error_detail(422, body) == "HTTP 422: field required"


def test_error_detail_ignores_html_body() -> None:
    assert error_detail(503, b"<html>Service Unavailable secret</html>") == "HTTP 503"


def test_error_detail_redirect() -> None:
    assert error_detail(302, None) == "HTTP 302: redirect not followed"


@pytest.mark.parametrize(
    ("obj", "ok"),
    [
        ({"data": [{"embedding": [0.1, 2, -3e-5]}]}, True),
        ({"data": [{"embedding": []}]}, False),
        ({"data": [{"embedding": [True]}]}, False),
        ({"data": [{"embedding": ["0.1"]}]}, False),
        ({"data": [{"embedding": "AAAA"}]}, False),
        ({"data": []}, False),
        ({"data": [1]}, False),
        ([], False),
    ],
)
def test_valid_embedding(obj: object, ok: bool) -> None:
    assert valid_embedding(obj) is ok
