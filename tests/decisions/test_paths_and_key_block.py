"""What an answer to a paths probe says of a path, and when the monitor's own key is blocked."""

from __future__ import annotations

import pytest

from monitor.core.health import HealthPolicy, apply, new_host
from monitor.core.key_block import blocked_after
from monitor.core.paths import PathAnswer, Paths, path_answer
from monitor.core.results import HostState, Outcome, ProbeKind, ProbeResult


@pytest.mark.parametrize(
    ("status", "message", "answer"),
    [
        (400, "Invalid inference path", PathAnswer.REFUSED),
        (404, "Not Found", PathAnswer.REFUSED),
        (405, None, PathAnswer.REFUSED),
        (400, "messages: field required", PathAnswer.ACCEPTED),
        (422, "Field 'messages' is required", PathAnswer.ACCEPTED),
        (401, "Invalid API key", PathAnswer.UNKNOWN),
        (403, "No credits.", PathAnswer.UNKNOWN),
        (503, None, PathAnswer.UNKNOWN),
    ],
)
def test_an_answer_to_an_invalid_body_says_whether_the_path_is_accepted(
    status: int, message: str | None, answer: PathAnswer
) -> None:
    assert path_answer(status, message) is answer


def test_a_path_left_unknown_keeps_what_was_known_of_it() -> None:
    before = Paths(("/v1/chat/completions", "/v1/messages"), ("/v1/embeddings",))
    newer = Paths(("/v1/embeddings",), ("/v1/messages",))
    assert before.updated(newer) == Paths(("/v1/chat/completions", "/v1/embeddings"), ("/v1/messages",))


def test_the_key_stays_blocked_until_a_keyed_request_succeeds() -> None:
    blocked = blocked_after(None, ProbeKind.COMPLETION, Outcome.KEY_BLOCKED, "No credits.")
    assert blocked == "No credits."
    assert blocked_after(blocked, ProbeKind.HEALTH, Outcome.OK, "") == blocked
    assert blocked_after(blocked, ProbeKind.PATHS, Outcome.OK, "") == blocked
    assert blocked_after(blocked, ProbeKind.COMPLETION, Outcome.OK, "") is None
    assert blocked_after(blocked, None, Outcome.OK, "") is None  # the gateway's key check


def test_a_blocked_key_never_takes_an_up_host_down() -> None:
    policy = HealthPolicy()
    h = apply(
        new_host("m", "http://h", True),
        ProbeResult("m", "http://h", ProbeKind.HEALTH, Outcome.OK, 1.0, 200),
        policy,
    )
    for t in range(2, 12):
        h = apply(h, ProbeResult("m", "http://h", ProbeKind.COMPLETION, Outcome.KEY_BLOCKED, t, 403), policy)
    assert h.state is HostState.UP and h.key_ok is None
