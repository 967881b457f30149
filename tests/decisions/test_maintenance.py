"""Maintenance windows: which host is out of routing when (monitor.core.maintenance), and the
ranking that leaves a drained host out of best and fallbacks (monitor.core.ranking)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from monitor.core.keys import HostKey
from monitor.core.maintenance import Drain, Window, drains, in_maintenance, maintenance_of
from monitor.core.ranking import rank
from monitor.core.steps import finish

from .test_ranking import NOW, down, up

A, B = "https://a.example", "https://b.example"
KEY = HostKey("hermes", A)
times = st.floats(min_value=0, max_value=1e9, allow_nan=False)


def window(
    host: str | None = A,
    model: str | None = None,
    start: float = 100.0,
    end: float = 200.0,
    ended: float | None = None,
    wid: int = 1,
) -> Window:
    return Window(wid, host, model, start, end, "kernel upgrade", ended)


@given(start=times, length=st.floats(min_value=0.001, max_value=1e6), t=times)
def test_a_host_is_in_maintenance_exactly_from_the_start_until_the_end(
    start: float, length: float, t: float
) -> None:
    w = window(start=start, end=start + length)
    assert in_maintenance([w], KEY, t) == (start <= t < start + length)


@given(start=times, length=st.floats(min_value=1, max_value=1e6), early=st.floats(0, 1), t=times)
def test_an_ended_window_stops_when_it_was_ended(start: float, length: float, early: float, t: float) -> None:
    ended = start + early * length
    w = window(start=start, end=start + length, ended=ended)
    assert in_maintenance([w], KEY, t) == (start <= t < ended)


def test_a_host_window_covers_every_model_of_that_host_only() -> None:
    w = window(host=A)
    assert in_maintenance([w], HostKey("hermes", A), 150)
    assert in_maintenance([w], HostKey("mistral", A), 150)
    assert not in_maintenance([w], HostKey("hermes", B), 150)


def test_a_model_window_covers_every_host_of_that_model_only() -> None:
    w = window(host=None, model="hermes")
    assert in_maintenance([w], HostKey("hermes", A), 150)
    assert in_maintenance([w], HostKey("hermes", B), 150)
    assert not in_maintenance([w], HostKey("mistral", A), 150)


def test_a_window_naming_neither_host_nor_model_covers_nothing() -> None:
    assert not in_maintenance([window(host=None, model=None)], KEY, 150)


def test_overlapping_windows_say_the_one_that_ends_last() -> None:
    short = window(end=150, wid=1)
    long = Window(2, None, "hermes", 120, 300, "datacenter move")
    assert maintenance_of([short, long], KEY, 130) == Drain("datacenter move", 300)


def test_a_window_on_an_alias_drains_the_hosts_of_its_base_model() -> None:
    w = window(host=None, model="hermes-thinking")
    drained = drains([w], "hermes", [A, B], 150, {"hermes-thinking": "hermes"})
    assert drained == {A: Drain("kernel upgrade", 200), B: Drain("kernel upgrade", 200)}


def test_the_state_of_a_window_is_scheduled_then_active_then_over() -> None:
    w = window()
    assert [w.state(t) for t in (50, 100, 199, 200)] == ["scheduled", "active", "active", "over"]


def test_a_drained_host_is_neither_best_nor_fallback_but_still_listed() -> None:
    hosts = [up(A, 50, 50, 50), up(B, 300, 300, 300)]
    r = finish(rank("hermes-3-8b", hosts, A, NOW, drained=frozenset({A})))
    assert (r.best, r.fallbacks, r.healthy, r.known) == (B, (), 1, 2)
    assert A in r.ordered and A not in r.eligible


def test_a_drained_host_is_no_fallback_even_in_panic() -> None:
    hosts = [up(A, 50, 50, 50), down(B, last_ok=1.0)]
    r = finish(rank("hermes-3-8b", hosts, A, NOW, drained=frozenset({A})))
    assert (r.best, r.panic, r.fallbacks) == (None, True, (B,))
    assert r.ordered == (B, A)
