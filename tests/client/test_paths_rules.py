"""What the client keeps of the paths each host refuses, from the monitor's `/v1/best/{model}`."""

from __future__ import annotations

import json
from typing import Any

from libertai_failover.answers import parse_answer

A, B = "http://127.0.0.1:1001", "http://127.0.0.1:1002"


def _body(*hosts: dict[str, Any]) -> bytes:
    return json.dumps({"model": "m", "host": A, "fallbacks": [B], "hosts": list(hosts)}).encode()


def test_a_host_refuses_the_paths_the_monitor_lists_as_refused_and_no_other() -> None:
    answer = parse_answer(
        "m",
        _body(
            {"url": A, "state": "up", "paths": ["/v1/chat/completions"], "paths_refused": ["/v1/messages"]},
            {"url": B, "state": "up", "paths": None, "paths_refused": None},
        ),
    )
    assert answer.refuses(A, "/v1/messages") and answer.refuses(A, "/v1/messages/")
    assert not answer.refuses(A, "/v1/chat/completions")
    assert not answer.refuses(B, "/v1/messages")  # not learnt yet: nothing is refused


def test_paths_refused_that_are_not_paths_are_ignored() -> None:
    answer = parse_answer(
        "m", _body({"url": A, "state": "up", "paths_refused": ["v1/messages", 7, "/" + "x" * 999]})
    )
    assert answer.refused_paths == {}
