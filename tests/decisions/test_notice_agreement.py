"""Which notices several vantages agree on (`notify_quorum`), which vantage sends them, and what a
maintenance window that ends leaves to announce."""

from __future__ import annotations

from monitor.core.notices import Notice, Notices, announces
from monitor.core.results import HostState, Outcome

UP, DOWN, UNKNOWN = HostState.UP, HostState.DOWN, HostState.UNKNOWN
A, B = "https://a.example", "https://b.example"
T0 = 1_700_000_000.0


def _kinds(notices: list[Notice]) -> list[str]:
    return [n.kind for n in notices]


def _seen_up(n: Notices) -> None:
    n.host_changed("m", A, UNKNOWN, UP, Outcome.OK, T0)
    n.host_changed("m", B, UNKNOWN, UP, Outcome.OK, T0)


def test_a_host_down_from_one_vantage_is_no_news_below_the_quorum() -> None:
    n = Notices(quorum=2)
    _seen_up(n)
    assert n.host_changed("m", A, UP, DOWN, Outcome.TIMEOUT, T0 + 10) == []


def test_a_host_is_announced_down_once_the_quorum_of_vantages_sees_it_down() -> None:
    n = Notices(quorum=2)
    _seen_up(n)
    n.host_changed("m", A, UP, DOWN, Outcome.TIMEOUT, T0 + 10)
    [down] = n.elsewhere({("m", A): ["eu"]}, T0 + 20)
    assert (down.kind, down.host, down.reason, down.since) == ("down", A, "timeout", T0 + 20)
    assert n.elsewhere({("m", A): ["eu"]}, T0 + 30) == []  # the same view again: no news


def test_other_vantages_alone_can_make_the_quorum() -> None:
    n = Notices(quorum=2)
    _seen_up(n)
    [down] = n.elsewhere({("m", A): ["eu", "us"]}, T0 + 20)
    assert (down.kind, down.reason) == ("down", "down from eu, us")


def test_a_host_is_up_again_when_fewer_than_the_quorum_see_it_down() -> None:
    n = Notices(quorum=2)
    _seen_up(n)
    n.host_changed("m", A, UP, DOWN, Outcome.TIMEOUT, T0 + 10)
    n.elsewhere({("m", A): ["eu"]}, T0 + 20)
    [up] = n.elsewhere({}, T0 + 1000)  # still down here, no longer from eu
    assert (up.kind, up.host) == ("up", A)


def test_a_model_has_no_healthy_host_only_when_the_quorum_sees_its_hosts_down() -> None:
    n = Notices(quorum=2)
    _seen_up(n)
    n.host_changed("m", A, UP, DOWN, Outcome.TIMEOUT, T0 + 10)
    n.host_changed("m", B, UP, DOWN, Outcome.TIMEOUT, T0 + 10)
    assert _kinds(n.elsewhere({("m", A): ["eu"]}, T0 + 20)) == ["down"]
    assert _kinds(n.elsewhere({("m", A): ["eu"], ("m", B): ["eu"]}, T0 + 30)) == ["down", "no_healthy_host"]


def test_with_the_default_quorum_another_vantage_seeing_a_host_down_is_enough() -> None:
    n = Notices()
    _seen_up(n)
    assert _kinds(n.elsewhere({("m", A): ["eu"]}, T0 + 20)) == ["down"]
    assert n.host_changed("m", A, UP, DOWN, Outcome.TIMEOUT, T0 + 30) == []  # the same outage


def test_the_lexically_first_vantage_with_fresh_results_announces() -> None:
    assert announces("default", [])
    assert announces("asia", ["eu", "us"])
    assert not announces("eu", ["asia", "us"])


def test_a_host_still_down_when_its_window_ends_is_announced_down_then_once() -> None:
    window_end = T0 + 600
    n = Notices(quiet=lambda model, host, at: host == A and at < window_end)
    _seen_up(n)
    assert n.host_changed("m", A, UP, DOWN, Outcome.TIMEOUT, T0 + 10) == []
    assert n.tick(T0 + 300) == []
    [down] = n.tick(window_end)
    assert (down.kind, down.host, down.reason, down.since) == ("down", A, "timeout", T0 + 10)
    assert n.tick(window_end + 1000) == []


def test_a_host_down_and_back_up_within_its_window_sends_nothing_after_it() -> None:
    window_end = T0 + 600
    n = Notices(quiet=lambda model, host, at: host == A and at < window_end)
    _seen_up(n)
    n.host_changed("m", A, UP, DOWN, Outcome.TIMEOUT, T0 + 10)
    n.host_changed("m", A, DOWN, UP, Outcome.OK, T0 + 100)
    assert n.tick(window_end) == [] and n.tick(window_end + 1000) == []


def test_a_host_back_up_just_after_its_window_ends_sends_nothing() -> None:
    window_end = T0 + 600
    n = Notices(quiet=lambda model, host, at: host == A and at < window_end)
    _seen_up(n)
    n.host_changed("m", A, UP, DOWN, Outcome.TIMEOUT, T0 + 10)
    assert n.host_changed("m", A, DOWN, UP, Outcome.OK, window_end + 1) == []  # before any tick
    assert n.tick(window_end + 1000) == []
