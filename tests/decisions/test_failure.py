"""Why a host fails, as kept with its health: the last failing probe's kind, status, short error and
time, and who is blamed when the gateway rejects the monitor's key itself."""

from __future__ import annotations

from monitor.core.facts import down_facts, last_failure
from monitor.core.failure import ERROR_MAX_CHARS, GATEWAY_REJECTS_KEY, Failure, blamed, short_error
from monitor.core.health import HealthPolicy, HostHealth, apply, new_host, replay
from monitor.core.results import HostState, Outcome, ProbeKind, ProbeResult

A = "https://a.example.org"
POLICY = HealthPolicy()


def _result(
    kind: ProbeKind, outcome: Outcome, at: float, status: int | None = None, detail: str = ""
) -> ProbeResult:
    return ProbeResult("m", A, kind, outcome, at, status, detail=detail)


def _fold(results: list[ProbeResult]) -> HostHealth:
    h = new_host("m", A, True)
    for r in results:
        h = apply(h, r, POLICY)
    return h


def test_the_error_text_is_what_the_host_said_without_the_status_the_failure_gives() -> None:
    assert short_error("HTTP 401: Invalid API key", Outcome.KEY_REJECTED) == "Invalid API key"


def test_a_failure_without_words_is_named_by_its_outcome() -> None:
    assert short_error("", Outcome.TIMEOUT) == "timeout"


def test_the_error_text_is_one_bounded_printable_line() -> None:
    text = short_error("HTTP 500: " + "boom\u2028\u202e\x07 " * 100, Outcome.SERVER_ERROR)
    assert text.isprintable() and len(text) <= ERROR_MAX_CHARS
    assert text.startswith("boom boom")


def test_a_down_host_keeps_the_failure_that_took_it_down() -> None:
    h = _fold(
        [
            _result(ProbeKind.COMPLETION, Outcome.OK, 1.0, 200),
            _result(ProbeKind.COMPLETION, Outcome.SERVER_ERROR, 2.0, 503, "HTTP 503: Model overloaded"),
            _result(ProbeKind.COMPLETION, Outcome.SERVER_ERROR, 3.0, 503, "HTTP 503: Model overloaded"),
        ]
    )
    assert h.state is HostState.DOWN
    assert last_failure(h) == Failure(
        ProbeKind.COMPLETION, 503, "Model overloaded", 3.0, Outcome.SERVER_ERROR
    )


def test_the_failing_group_explains_the_state_not_a_later_failure_of_the_other_group() -> None:
    h = _fold(
        [
            _result(ProbeKind.HEALTH, Outcome.OK, 1.0, 200),
            _result(ProbeKind.COMPLETION, Outcome.SERVER_ERROR, 2.0, 500, "HTTP 500: out of memory"),
            _result(ProbeKind.COMPLETION, Outcome.SERVER_ERROR, 3.0, 500, "HTTP 500: out of memory"),
            _result(ProbeKind.HEALTH, Outcome.TIMEOUT, 4.0, None, "TimeoutError"),
        ]
    )
    assert h.reason is Outcome.SERVER_ERROR
    failure = last_failure(h)
    assert failure is not None and (failure.kind, failure.status, failure.error) == (
        ProbeKind.COMPLETION,
        500,
        "out of memory",
    )


def test_a_connection_error_has_no_status() -> None:
    h = _fold([_result(ProbeKind.HEALTH, Outcome.CONNECT_ERROR, 1.0, None, "ClientConnectorError: refused")])
    failure = last_failure(h)
    assert failure is not None and failure.status is None and failure.error == "ClientConnectorError: refused"


def test_a_replay_keeps_the_same_failures_as_applying_each_result() -> None:
    results = [
        _result(ProbeKind.HEALTH, Outcome.TIMEOUT, 1.0, None, "TimeoutError"),
        _result(ProbeKind.COMPLETION, Outcome.RATE_LIMITED, 2.0, 429, "HTTP 429: slow down"),
        _result(ProbeKind.COMPLETION, Outcome.OK, 3.0, 200),
    ]
    assert replay(new_host("m", A, True), results, POLICY) == _fold(results)


def test_a_host_that_refuses_a_key_the_gateway_rejects_is_not_blamed() -> None:
    kept = Failure(ProbeKind.AUTH, 401, "Invalid API key", 5.0, Outcome.KEY_REJECTED)
    failure, key_ok = blamed(kept, Outcome.KEY_REJECTED, False, gateway_rejects_key=True)
    assert key_ok is None
    assert failure == Failure(ProbeKind.AUTH, 401, GATEWAY_REJECTS_KEY, 5.0, Outcome.KEY_REJECTED)


def test_a_host_that_refuses_a_key_the_gateway_accepts_is_blamed() -> None:
    kept = Failure(ProbeKind.AUTH, 401, "Invalid API key", 5.0, Outcome.KEY_REJECTED)
    assert blamed(kept, Outcome.KEY_REJECTED, False, gateway_rejects_key=False) == (kept, False)


def test_a_restored_host_that_refuses_a_key_the_gateway_rejects_still_says_why() -> None:
    failure, key_ok = blamed(
        None, Outcome.KEY_REJECTED, False, True, failing_kind=ProbeKind.COMPLETION, failing_since=7.0
    )
    assert key_ok is None
    assert failure == Failure(ProbeKind.COMPLETION, None, GATEWAY_REJECTS_KEY, 7.0, Outcome.KEY_REJECTED)


def test_a_passing_auth_check_does_not_end_the_run_of_failing_completions() -> None:
    h = _fold(
        [
            _result(ProbeKind.COMPLETION, Outcome.OK, 1.0, 200),
            _result(ProbeKind.COMPLETION, Outcome.SERVER_ERROR, 2.0, 503, "HTTP 503: busy"),
            _result(ProbeKind.COMPLETION, Outcome.SERVER_ERROR, 3.0, 503, "HTTP 503: busy"),
            _result(ProbeKind.AUTH, Outcome.OK, 4.0, 200),
        ]
    )
    assert h.state is HostState.DOWN
    assert down_facts(h).failing_since == 2.0
