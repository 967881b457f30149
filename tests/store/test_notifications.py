"""Notifications sent once, whichever replica leads: the leader records each message pending and
then sent, a new leader sends what was pending and nothing that was recorded."""

from __future__ import annotations

from monitor.core.clock import FakeClock
from monitor.core.health import HostHealth
from monitor.core.notices import Notices
from monitor.core.results import HostState, Outcome
from monitor.parts.notifier import Message, Notifier
from monitor.store import Store
from monitor.store.notifications import StoredMessage

T0 = 1_700_000_000.0


class Sent:
    def __init__(self) -> None:
        self.titles: list[str] = []

    async def __call__(self, title: str, body: str) -> bool:
        self.titles.append(title)
        return True


def _notifier(store: Store | None, sent: Sent, leading: bool = True) -> Notifier:
    return Notifier(Notices(), sent, FakeClock(), leading=lambda: leading, record=store, channel="json")


async def _drain(n: Notifier) -> None:
    while n.queued:
        await n.deliver_next()


async def test_a_new_leader_sends_what_was_pending_and_not_what_was_sent(store: Store) -> None:
    await store.claim_notification(StoredMessage("down|m|a|1", "json", "pending one", "b", 0), T0)
    await store.claim_notification(StoredMessage("down|m|b|1", "json", "sent one", "b", 0), T0)
    await store.mark_notification("down|m|b|1", "json", "sent", 1, T0)
    sent = Sent()
    successor = _notifier(store, sent)
    await successor.resume()
    await _drain(successor)
    assert sent.titles == ["pending one"]
    assert await store.pending_notifications("json") == []


async def test_a_message_recorded_by_a_predecessor_is_not_sent_again(store: Store) -> None:
    await store.claim_notification(StoredMessage("down|m|a|1", "json", "t", "b", 0), T0)
    sent = Sent()
    n = _notifier(store, sent)
    n.put(Message("down|m|a|1", "t", "b"))
    await _drain(n)
    assert sent.titles == []


async def test_a_delivered_message_is_recorded_and_no_longer_pending(store: Store) -> None:
    sent = Sent()
    n = _notifier(store, sent)
    n.put(Message("down|m|a|1", "t", "b"))
    await _drain(n)
    assert sent.titles == ["t"]
    assert await store.pending_notifications("json") == []
    assert not await store.claim_notification(StoredMessage("down|m|a|1", "json", "t", "b", 0), T0)


async def test_a_follower_sends_nothing() -> None:
    sent = Sent()
    n = _notifier(None, sent, leading=False)
    before = HostHealth("m", "https://a.example", True, HostState.UP, Outcome.OK)
    after = HostHealth("m", "https://a.example", True, HostState.DOWN, Outcome.TIMEOUT)
    n.note_state(before, after, T0)
    await _drain(n)
    assert sent.titles == []
