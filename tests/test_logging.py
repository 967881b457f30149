"""Logs: the key is masked wherever it would appear, in our events and in the stdlib's."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest
from aiohttp import web
from aiohttp.http_exceptions import BadHttpMessage

from monitor.core.clock import FakeClock
from monitor.core.secret import Secret
from monitor.logging import MALFORMED_REQUESTS, MalformedRequests, configure_logging, get_logger

KEY = "sk-live-0123456789abcdef"


@pytest.fixture
def json_logs(capsys: pytest.CaptureFixture[str]) -> pytest.CaptureFixture[str]:
    configure_logging("debug", "json", Secret(KEY))
    return capsys


def _lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, object]]:
    return [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.strip()]


def test_events_are_json_lines_with_level_and_time(json_logs: pytest.CaptureFixture[str]) -> None:
    get_logger("t").info("host up", model="m", host="http://h")
    (line,) = _lines(json_logs)
    assert line["event"] == "host up" and line["level"] == "info" and "timestamp" in line


def test_key_value_is_masked_in_any_field(json_logs: pytest.CaptureFixture[str]) -> None:
    get_logger("t").warning("oops", detail=f"server said {KEY}", nested={"x": [KEY]})
    text = json_logs.readouterr().err
    assert KEY not in text and "***" in text


def test_authorization_and_bearer_are_masked(json_logs: pytest.CaptureFixture[str]) -> None:
    get_logger("t").info("req", authorization="Bearer abc", note="header was Bearer xyz123")
    text = json_logs.readouterr().err
    assert "abc" not in text and "xyz123" not in text


def test_stdlib_loggers_go_through_the_same_redaction(json_logs: pytest.CaptureFixture[str]) -> None:
    logging.getLogger("aiohttp.client").error("failed with key %s", KEY)
    (line,) = _lines(json_logs)
    assert KEY not in json.dumps(line) and line["logger"] == "aiohttp.client"


def test_exception_text_is_masked(json_logs: pytest.CaptureFixture[str]) -> None:
    try:
        raise RuntimeError(f"boom {KEY}")
    except RuntimeError:
        get_logger("t").exception("failed")
    assert KEY not in json_logs.readouterr().err


def test_secret_never_shows_its_value() -> None:
    s = Secret(KEY)
    assert KEY not in repr(s) and KEY not in str(s) and KEY not in f"{s}" and KEY not in f"{s!r}"
    assert s.reveal() == KEY


SHORT_KEY = "e"


def test_the_key_is_masked_as_a_whole_token_not_inside_words(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("debug", "json", Secret(SHORT_KEY))
    get_logger("t").info("alembic upgrade", detail="token=e;", url="https://h/?key=e&x=1")
    (line,) = _lines(capsys)
    assert line["event"] == "alembic upgrade"
    assert line["detail"] == "token=***;" and line["url"] == "https://h/?key=***&x=1"


def test_the_key_glued_to_punctuation_is_still_masked(json_logs: pytest.CaptureFixture[str]) -> None:
    get_logger("t").info("seen", detail=f'{{"key":"{KEY}"}}', other=f"({KEY}).")
    text = json_logs.readouterr().err
    assert KEY not in text


async def _send_raw(port: int, data: bytes) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    await writer.drain()
    await reader.read()  # the server answers 400 and closes
    writer.close()


async def _junk_server() -> tuple[web.AppRunner, int]:
    runner = web.AppRunner(web.Application())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, runner.addresses[0][1]


async def test_a_malformed_request_is_one_short_warning_without_traceback(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("debug", "json", None)
    MALFORMED_REQUESTS._last = None  # a fresh minute for this test
    runner, port = await _junk_server()
    try:
        await _send_raw(port, b"GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n")
    finally:
        await runner.cleanup()
    lines = [line for line in _lines(capsys) if line.get("logger") == "aiohttp.server"]
    assert len(lines) == 1
    (line,) = lines
    assert line["event"] == "malformed HTTP request" and line["level"] == "warning"
    assert "exception" not in line and "Traceback" not in json.dumps(line)


async def test_malformed_requests_are_logged_at_most_once_a_minute() -> None:
    clock = FakeClock()
    limiter = MalformedRequests(every_s=60, clock=clock)
    logger = logging.getLogger("test.malformed")

    def record() -> logging.LogRecord:
        exc = BadHttpMessage("Invalid header")
        return logger.makeRecord(
            "aiohttp.server",
            logging.ERROR,
            __file__,
            1,
            "Error handling request from %s",
            ("1.2.3.4",),
            (type(exc), exc, None),
        )

    kept = [limiter.filter(record()) for _ in range(100)]
    assert kept.count(True) == 1
    await clock.advance(61)
    later = record()
    assert limiter.filter(later) and later.__dict__["not_logged_since"] == 99


def test_a_handler_bug_keeps_its_traceback() -> None:
    limiter = MalformedRequests()
    exc = RuntimeError("bug")
    rec = logging.getLogger("t").makeRecord(
        "aiohttp.server", logging.ERROR, __file__, 1, "Error handling request", (), (type(exc), exc, None)
    )
    assert limiter.filter(rec) and rec.exc_info is not None and rec.levelno == logging.ERROR
