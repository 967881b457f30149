"""Logs: the key is masked wherever it would appear, in our events and in the stdlib's."""

from __future__ import annotations

import json
import logging

import pytest

from monitor.logging import configure_logging, get_logger
from monitor.secret import Secret

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
