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


async def test_a_new_leader_that_sees_a_pending_change_for_itself_does_not_announce_it_again(
    store: Store,
) -> None:
    await store.claim_notification(StoredMessage("down|m|a|1.000", "json", "down by the first", "b", 0), T0)
    sent = Sent()
    successor = _notifier(store, sent)
    await successor.resume()
    successor.put(Message("down|m|a|7.000", "down seen again", "b"))  # the same outage, seen later
    await _drain(successor)
    assert sent.titles == ["down by the first"]


async def test_a_change_the_new_leader_sees_before_resuming_is_sent_once(store: Store) -> None:
    await store.claim_notification(StoredMessage("down|m|a|1.000", "json", "down by the first", "b", 0), T0)
    sent = Sent()
    successor = _notifier(store, sent)
    successor.put(Message("down|m|a|7.000", "down seen again", "b"))
    await _drain(successor)
    await successor.resume()
    await _drain(successor)
    assert len(sent.titles) == 1
    assert await store.pending_notifications("json") == []


async def test_a_pending_message_no_longer_the_last_word_on_its_host_is_superseded_not_sent(
    store: Store,
) -> None:
    await store.claim_notification(StoredMessage("down|m|a|1.000", "json", "down", "b", 0), T0)
    await store.claim_notification(StoredMessage("down|m|b|1.000", "json", "b down", "b", 0), T0)
    await store.claim_notification(StoredMessage("up|m|a|2.000", "json", "up", "b", 0), T0)
    await store.mark_notification("up|m|a|2.000", "json", "sent", 1, T0)
    pending = await store.pending_notifications("json", T0)
    assert [m.title for m in pending] == ["b down"]


async def test_a_new_outage_after_the_recovery_is_announced(store: Store) -> None:
    sent = Sent()
    n = _notifier(store, sent)
    for event, title in (
        ("down|m|a|1.000", "down"),
        ("up|m|a|2.000", "up"),
        ("down|m|a|3.000", "down again"),
    ):
        n.put(Message(event, title, "b"))
        await _drain(n)
    assert sent.titles == ["down", "up", "down again"]


async def test_another_hosts_change_is_not_taken_for_this_ones(store: Store) -> None:
    sent = Sent()
    n = _notifier(store, sent)
    for event in (
        "down|m|https://a.example|1.000",
        "down|m|https://a.example:8443|1.000",
        "down|m2|https://a.example|1.000",
    ):
        n.put(Message(event, event, "b"))
        await _drain(n)
    assert len(sent.titles) == 3
