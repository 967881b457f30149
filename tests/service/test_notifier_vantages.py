"""Notifiers of two vantages ("asia" and "eu", each its vantage's leader) with notify_quorum=2: fed
their own state changes and the other's view, as `Vantages` refreshes it; one message in all."""

from __future__ import annotations

from monitor.core.clock import FakeClock
from monitor.core.health import HostHealth
from monitor.core.host_view import Elsewhere
from monitor.core.keys import HostKey
from monitor.core.notices import Notices
from monitor.core.results import HostState, Outcome
from monitor.parts.notifier import Notifier

A = "https://a.example"
T0 = 1_700_000_000.0
UP = HostHealth("m", A, True, HostState.UP, Outcome.OK)
DOWN = HostHealth("m", A, True, HostState.DOWN, Outcome.TIMEOUT)


class Sent:
    def __init__(self) -> None:
        self.titles: list[str] = []

    async def __call__(self, title: str, body: str) -> bool:
        self.titles.append(title)
        return True


def _vantage(name: str, other: str, sent: Sent) -> Notifier:
    n = Notifier(Notices(quorum=2), sent, FakeClock(T0), leading=lambda: True, vantages=True)
    n.note_elsewhere(Elsewhere(name, {}, 2, (other,)), T0)
    n.note_state(HostHealth("m", A, True, HostState.UNKNOWN, Outcome.OK), UP, T0)
    return n


async def _drain(*notifiers: Notifier) -> None:
    for n in notifiers:
        while n.queued:
            await n.deliver_next()


async def test_no_message_while_only_one_vantage_sees_a_host_down() -> None:
    sent = Sent()
    asia, eu = _vantage("asia", "eu", sent), _vantage("eu", "asia", sent)
    asia.note_state(UP, DOWN, T0 + 10)
    eu.note_elsewhere(Elsewhere("eu", {HostKey("m", A): ("asia",)}, 2, ("asia",)), T0 + 15)
    await _drain(asia, eu)
    assert sent.titles == []


async def test_one_message_in_all_once_both_vantages_see_a_host_down() -> None:
    sent = Sent()
    asia, eu = _vantage("asia", "eu", sent), _vantage("eu", "asia", sent)
    asia.note_state(UP, DOWN, T0 + 10)
    eu.note_state(UP, DOWN, T0 + 12)
    asia.note_elsewhere(Elsewhere("asia", {HostKey("m", A): ("eu",)}, 2, ("eu",)), T0 + 15)
    eu.note_elsewhere(Elsewhere("eu", {HostKey("m", A): ("asia",)}, 2, ("asia",)), T0 + 16)
    await _drain(asia, eu)
    assert sent.titles == [f"Host down: m {A}", "No healthy host: m"]  # its only host


async def test_nothing_is_sent_before_the_other_vantages_view_is_first_read() -> None:
    sent = Sent()
    n = Notifier(Notices(), sent, FakeClock(T0), leading=lambda: True, vantages=True)
    n.note_state(UP, DOWN, T0)
    await _drain(n)
    assert sent.titles == []
