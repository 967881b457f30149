"""Which state changes become a message: one per change that matters, at most one per interval."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.core.notices import Notice, Notices, render, subject_prefixes
from monitor.core.results import HostState, Outcome

UP, DOWN, UNKNOWN = HostState.UP, HostState.DOWN, HostState.UNKNOWN
A, B = "https://a.example", "https://b.example"
T0 = 1_700_000_000.0


def _kinds(notices: list[Notice]) -> list[str]:
    return [n.kind for n in notices]


def test_a_host_first_seen_up_is_no_news() -> None:
    assert Notices().host_changed("m", A, UNKNOWN, UP, Outcome.OK, T0) == []


def test_a_host_first_seen_down_is_announced() -> None:
    assert _kinds(Notices().host_changed("m", A, UNKNOWN, DOWN, Outcome.TIMEOUT, T0)) == ["down"]


def test_an_outage_is_one_down_and_one_up_naming_model_host_reason_and_since() -> None:
    n = Notices(min_interval_s=300)
    n.host_changed("m", A, UNKNOWN, UP, Outcome.OK, T0)
    n.host_changed("m", B, UNKNOWN, UP, Outcome.OK, T0)
    [down] = n.host_changed("m", A, UP, DOWN, Outcome.TIMEOUT, T0 + 10)
    assert (down.kind, down.model, down.host, down.reason, down.since) == ("down", "m", A, "timeout", T0 + 10)
    [up] = n.host_changed("m", A, DOWN, UP, Outcome.OK, T0 + 1000)
    assert (up.kind, up.host, up.since) == ("up", A, T0 + 1000)


def test_a_model_whose_last_up_host_goes_down_has_no_healthy_host_then_is_healthy_again() -> None:
    n = Notices()
    n.host_changed("m", A, UNKNOWN, UP, Outcome.OK, T0)
    assert _kinds(n.host_changed("m", A, UP, DOWN, Outcome.SERVER_ERROR, T0 + 10)) == [
        "down",
        "no_healthy_host",
    ]
    assert _kinds(n.host_changed("m", A, DOWN, UP, Outcome.OK, T0 + 1000)) == ["up", "healthy"]


def test_hosts_first_probed_down_at_start_do_not_announce_a_model_outage() -> None:
    n = Notices()
    out = n.host_changed("m", A, UNKNOWN, DOWN, Outcome.TIMEOUT, T0)
    out += n.host_changed("m", B, UNKNOWN, UP, Outcome.OK, T0 + 1)
    assert "no_healthy_host" not in _kinds(out)


def test_a_flapping_host_sends_one_message_per_interval_with_a_count() -> None:
    n = Notices(min_interval_s=300)
    n.host_changed("m", A, UNKNOWN, UP, Outcome.OK, T0)
    n.host_changed("m", B, UNKNOWN, UP, Outcome.OK, T0)
    sent = n.host_changed("m", A, UP, DOWN, Outcome.TIMEOUT, T0 + 1)
    for i in range(2, 7):  # up, down, up, down, up within the interval
        before, after = (DOWN, UP) if i % 2 == 0 else (UP, DOWN)
        sent += n.host_changed("m", A, before, after, Outcome.TIMEOUT, T0 + i)
    assert _kinds(sent) == ["down"]
    assert n.tick(T0 + 100) == []
    [held] = n.tick(T0 + 301)
    assert (held.kind, held.changes) == ("up", 5)


def test_a_host_back_where_it_was_announced_is_reported_as_flapping() -> None:
    n = Notices(min_interval_s=300)
    n.host_changed("m", B, UNKNOWN, UP, Outcome.OK, T0)
    n.host_changed("m", A, UNKNOWN, DOWN, Outcome.TIMEOUT, T0)
    n.host_changed("m", A, DOWN, UP, Outcome.OK, T0 + 1)
    n.host_changed("m", A, UP, DOWN, Outcome.TIMEOUT, T0 + 2)
    [held] = n.tick(T0 + 300)
    assert (held.kind, held.changes) == ("flapping", 2)


def test_a_host_in_maintenance_sends_nothing() -> None:
    n = Notices(quiet=lambda model, host, at: host == A)
    n.host_changed("m", B, UNKNOWN, UP, Outcome.OK, T0)
    assert n.host_changed("m", A, UNKNOWN, DOWN, Outcome.TIMEOUT, T0) == []
    assert n.host_changed("m", A, DOWN, UP, Outcome.OK, T0 + 1000) == []
    assert n.tick(T0 + 5000) == []


def test_a_model_whose_last_host_goes_down_in_maintenance_sends_nothing() -> None:
    n = Notices(quiet=lambda model, host, at: host == A)
    n.host_changed("m", A, UNKNOWN, UP, Outcome.OK, T0)
    assert n.host_changed("m", A, UP, DOWN, Outcome.TIMEOUT, T0 + 10) == []
    assert n.host_changed("m", A, DOWN, UP, Outcome.OK, T0 + 1000) == []


def test_the_gateway_is_announced_failing_only_after_notify_gateway_after() -> None:
    n = Notices(gateway_after_s=300)
    assert n.gateway(False, T0, "HTTP 502") == []
    assert n.gateway(False, T0 + 120, "HTTP 502") == []
    [failing] = n.gateway(False, T0 + 300, "HTTP 502")
    assert (failing.kind, failing.since, failing.reason) == ("gateway_failing", T0, "HTTP 502")
    assert n.gateway(False, T0 + 360, "HTTP 502") == []
    assert _kinds(n.gateway(True, T0 + 1000)) == ["gateway_ok"]


def test_a_short_gateway_failure_sends_nothing() -> None:
    n = Notices(gateway_after_s=300)
    assert n.gateway(False, T0) + n.gateway(True, T0 + 60) == []


def test_the_service_key_rejected_is_announced_once() -> None:
    n = Notices()
    assert _kinds(n.key(Outcome.KEY_REJECTED, T0)) == ["key_rejected"]
    assert n.key(Outcome.KEY_REJECTED, T0 + 60) == []
    assert n.key(Outcome.TIMEOUT, T0 + 120) == []
    assert _kinds(n.key(Outcome.OK, T0 + 1000)) == ["key_ok"]


def test_the_service_key_blocked_is_announced_once_with_its_reason() -> None:
    n = Notices()
    [notice] = n.key(Outcome.OK, T0, blocked="No credits.")
    assert notice.kind == "key_blocked" and notice.reason == "No credits."
    assert render(notice)[0] == "API key blocked"
    assert n.key(Outcome.KEY_BLOCKED, T0 + 60, blocked="No credits.") == []
    assert _kinds(n.key(Outcome.OK, T0 + 1000)) == ["key_ok"]


def test_a_message_links_the_model_status_page_when_public_url_is_set() -> None:
    [down] = Notices().host_changed("m/x", A, UNKNOWN, DOWN, Outcome.TIMEOUT, T0)
    title, body = render(down, "https://status.example/")
    assert A in title and "m/x" in title
    assert "https://status.example/status/m/x" in body and "timeout" in body and "2023-11-14" in body


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.floats(0.0, 2000.0)), max_size=40))
def test_at_most_one_message_per_interval_per_host(steps: list[tuple[bool, float]]) -> None:
    n = Notices(min_interval_s=300)
    n.host_changed("m", B, UNKNOWN, UP, Outcome.OK, T0)
    state, at, sent = UNKNOWN, T0, []
    for up, gap in steps:
        at += gap
        new = UP if up else DOWN
        sent += [x for x in n.host_changed("m", A, state, new, Outcome.TIMEOUT, at) if x.host == A]
        sent += [x for x in n.tick(at) if x.host == A]
        state = new
    times = [x.at for x in sent]
    assert all(b - a >= 300 for a, b in itertools.pairwise(times))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(0.0, 5000.0), min_size=2, max_size=20))
def test_slow_outages_are_one_down_and_one_up_each(gaps: list[float]) -> None:
    n = Notices(min_interval_s=300)
    n.host_changed("m", B, UNKNOWN, UP, Outcome.OK, T0)
    n.host_changed("m", A, UNKNOWN, UP, Outcome.OK, T0)
    state, at, kinds = UP, T0, []
    for gap in gaps:
        at += 300 + gap  # each change comes an interval or more after the previous one
        new = DOWN if state is UP else UP
        kinds += [x.kind for x in n.host_changed("m", A, state, new, Outcome.TIMEOUT, at) if x.host == A]
        state = new
    assert kinds == ["down", "up"] * (len(gaps) // 2) + ["down"] * (len(gaps) % 2)


def test_a_changed_certificate_is_announced_saying_whether_the_key_is_withheld() -> None:
    n = Notices()
    [notice] = n.cert_changed(A, "a" * 64, "b" * 64, True, T0)
    assert notice.kind == "cert_changed" and notice.host == A
    assert notice.reason is not None and f"certs accept {A}" in notice.reason
    assert render(notice)[0] == f"Certificate changed: {A}"


def test_a_host_alternating_between_two_certificates_sends_one_message_per_interval() -> None:
    n = Notices(min_interval_s=300)
    one, two = "a" * 64, "b" * 64
    assert _kinds(n.cert_changed(A, one, two, False, T0)) == ["cert_changed"]
    assert n.cert_changed(A, two, one, False, T0 + 1) == []
    assert n.cert_changed(A, one, two, False, T0 + 2) == []
    [later] = n.tick(T0 + 301)
    assert (later.kind, later.changes) == ("flapping", 2)


def test_the_messages_of_one_subject_are_found_by_their_prefixes() -> None:
    own, family = subject_prefixes(f"down|hermes|{A}|1700000000.000") or ("", ())
    assert own == f"down|hermes|{A}|"
    assert family == tuple(sorted(f"{k}|hermes|{A}|" for k in ("down", "up", "flapping")))
    assert subject_prefixes(f"cert_changed||{A}|1700000000.000") is None  # every change is news
