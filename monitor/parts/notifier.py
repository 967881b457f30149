"""Sending the notices (`monitor.core.notices`) through Apprise, on its own task.

Decisions are taken where changes happen (the recorder's subscriber, the other vantages' view on
each refresh, and a look at discovery's status on each tick); only the announcer queues what they
decide, so a replica that sees the same changes sends nothing but stays ready to take over without
repeating them.

Sent once in all: within a vantage, the leader alone announces (a new leader resumes what its
predecessor recorded pending, and skips what it recorded); across vantages, every leader decides
the same notices from the same agreement (`notify_quorum`) and only the leader of the lexically
first vantage with fresh results sends (`core.notices.announces`). The alternative, de-duplicating
in the `notifications` table by event, needs an identity of a change that every vantage computes
alike; but each vantage sees a change at its own moment (a refresh of the others' view apart), so
its identity would be a bare (subject, value): a vantage lagging behind would announce an "up" the
announcer already followed with a new "down", and one whose claim lost a race could silence a real
change. One announcer follows one sequence of agreed values; another takes over when its results
stop being fresh (and, until the others' view is first read, nobody announces).

The queue is bounded and its task delivers with retries and backoff on the injected clock: a
notifier that fails never holds up probing, and a message still undelivered after `attempts` tries
is dropped and counted (`libertai_monitor_notifications_total{state}`).

The URLs hold tokens: they stay in a `Secret` up to Apprise, errors are logged by type only,
and Apprise's own lines below warning (which show URLs) are not let through.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final, Protocol, runtime_checkable

from monitor.config import Settings
from monitor.core.clock import Clock
from monitor.core.health import HostHealth
from monitor.core.host_view import Elsewhere
from monitor.core.keys import HostKey
from monitor.core.notices import Notice, Notices, announces, render
from monitor.core.results import Outcome
from monitor.core.secret import Secret
from monitor.core.snapshot import DiscoveryStatus
from monitor.logging import get_logger
from monitor.parts.certs import CertChanged
from monitor.store.errors import StoreError
from monitor.store.notifications import StoredMessage
from monitor.store.schema import NOTIFICATION_CHANNEL_MAX

log = get_logger("monitor.service")

Send = Callable[[str, str], Awaitable[bool]]  # (title, body) -> delivered
TICK_S: Final = 5.0  # how often held notices and discovery's status are looked at
QUEUE_SIZE: Final = 1000
ATTEMPTS: Final = 6
BACKOFF_S: Final = 5.0  # doubled per attempt
BACKOFF_MAX_S: Final = 300.0


@dataclass(frozen=True, slots=True)
class Message:
    event: str  # the notice's identity (`Notice.event`), recorded once per channel
    title: str
    body: str
    resumed: bool = False  # recorded pending by a leader before this one: send, do not record again


@runtime_checkable
class NotificationLog(Protocol):
    """The database's record of messages (`monitor.store.notifications`)."""

    async def claim_notification(self, message: StoredMessage, at: float) -> bool: ...
    async def mark_notification(
        self, event: str, channel: str, state: str, attempts: int, at: float
    ) -> None: ...
    async def pending_notifications(self, channel: str, at: float = ...) -> list[StoredMessage]: ...


def channel_of(urls: Secret) -> str:
    """The URLs' schemes (tgram, json, ...): what the database records instead of the URLs."""
    schemes = sorted({url.split("://", 1)[0].strip().lower() for url in urls.reveal().split(",")})
    return ",".join(schemes)[:NOTIFICATION_CHANNEL_MAX]


class Gateway(Protocol):
    @property
    def status(self) -> DiscoveryStatus: ...
    @property
    def key_outcome(self) -> Outcome | None: ...
    @property
    def key_blocked(self) -> str | None: ...


def apprise_sender(urls: Secret) -> Send:
    """Send through Apprise to every URL of `urls` (async: Apprise's own workers do the I/O)."""
    import apprise

    # Their debug and info lines show URLs (urllib3 is Apprise's HTTP client; the service's own
    # HTTP goes through aiohttp and httpx2).
    for name in ("apprise", "urllib3"):
        logging.getLogger(name).setLevel(logging.WARNING)
    sender = apprise.Apprise()
    for url in urls.reveal().split(","):
        if not sender.add(url):
            log.warning("a notification URL is not one Apprise knows: skipped")

    async def send(title: str, body: str) -> bool:
        return bool(await sender.async_notify(body=body, title=title))

    return send


class Notifier:
    def __init__(
        self,
        notices: Notices,
        send: Send,
        clock: Clock,
        *,
        leading: Callable[[], bool],
        public_url: str | None = None,
        attempts: int = ATTEMPTS,
        backoff_s: float = BACKOFF_S,
        queue_size: int = QUEUE_SIZE,
        record: NotificationLog | None = None,
        channel: str = "apprise",
        vantages: bool = False,
    ) -> None:
        self._notices = notices
        self._send = send
        self._clock = clock
        self._leading = leading
        self._public_url = public_url
        self._attempts = attempts
        self._backoff_s = backoff_s
        self._queue: asyncio.Queue[Message] = asyncio.Queue(queue_size)
        # Recorded pending at once, whatever delivery is retrying: a leader killed meanwhile leaves
        # every message it decided to its successor.
        self._ready: asyncio.Queue[Message] = asyncio.Queue()
        self._record = record
        self._channel = channel
        self._resumed = False  # the pending messages of earlier leaders are queued
        # With other vantages possible (`vantages`): their view, None until first read.
        self._elsewhere: Elsewhere | None = None if vantages else Elsewhere()
        self.counts: Counter[str] = Counter()  # state (sent, retried, dropped) -> messages
        self._seen_attempt: float | None = None
        self._tasks: list[asyncio.Task[None]] = []

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        clock: Clock,
        leading: Callable[[], bool],
        in_maintenance: Callable[[HostKey, float], bool],
        record: NotificationLog | None = None,
        *,
        vantages: bool = False,
    ) -> Notifier | None:
        if settings.notify_urls is None:
            return None

        def quiet(model: str, host: str, at: float) -> bool:
            return in_maintenance(HostKey(model, host), at)

        notices = Notices(
            settings.notify_min_interval, settings.notify_gateway_after, quiet, settings.notify_quorum
        )
        send = apprise_sender(settings.notify_urls)
        channel = channel_of(settings.notify_urls)
        return cls(
            notices,
            send,
            clock,
            leading=leading,
            public_url=settings.public_url,
            record=record,
            channel=channel,
            vantages=vantages,
        )

    def note_state(self, before: HostHealth, after: HostHealth, at: float) -> None:
        """A subscriber of the recorder's state changes."""
        decided = self._notices.host_changed(
            after.model, after.host, before.state, after.state, after.reason, at
        )
        self._queue_all(decided)

    def note_cert(self, change: CertChanged) -> None:
        """A subscriber of the certificates' changes."""
        withheld = not change.trusted
        self._queue_all(
            self._notices.cert_changed(change.host, change.previous, change.sha256, withheld, change.at)
        )

    def note_elsewhere(self, elsewhere: Elsewhere, at: float) -> None:
        """The other vantages' view, on each refresh (`Vantages.run_forever`'s `also`)."""
        self._elsewhere = elsewhere
        down = {(key.model, key.host): vantages for key, vantages in elsewhere.down.items()}
        self._queue_all(self._notices.elsewhere(down, at))

    def announcing(self) -> bool:
        """Whether this process sends: it leads its vantage, and its vantage is the announcer."""
        e = self._elsewhere
        return e is not None and self._leading() and announces(e.local, e.others)

    def look(self, gateway: Gateway, now: float) -> None:
        """Held notices whose interval is over, and what discovery's last run and key check say."""
        status = gateway.status
        if status.last_attempt_at is not None and status.last_attempt_at != self._seen_attempt:
            self._seen_attempt = status.last_attempt_at
            self._queue_all(self._notices.gateway(bool(status.ok), status.last_attempt_at, status.error))
        self._queue_all(self._notices.key(gateway.key_outcome, now, gateway.key_blocked))
        self._queue_all(self._notices.tick(now))

    def _queue_all(self, notices: list[Notice]) -> None:
        if not notices or not self.announcing():
            return
        for notice in notices:
            self.put(Message(notice.event, *render(notice, self._public_url)))

    def put(self, message: Message) -> None:
        """Queue a message for delivery (counted as dropped when the queue is full)."""
        try:
            self._queue.put_nowait(message)
        except asyncio.QueueFull:
            self.counts["dropped"] += 1
            log.warning("notification dropped: the queue is full", event=message.event)

    async def resume(self) -> None:
        """As the announcer: queue what earlier ones recorded pending, once. Otherwise: leave the
        queue to the announcer (what is in it is recorded pending, and the announcer resumes it)."""
        if not self.announcing():
            self._resumed = False
            for queue in (self._queue, self._ready):
                while not queue.empty():
                    queue.get_nowait()
            return
        if self._resumed or self._record is None:
            return
        try:
            pending = await self._record.pending_notifications(self._channel, self._clock.time())
        except StoreError:
            return  # logged by the store; tried again on the next tick
        self._resumed = True
        for stored in pending:
            self.put(Message(stored.event, stored.title, stored.body, resumed=True))

    def start(self, gateway: Gateway) -> None:
        self._tasks = [
            asyncio.create_task(self.deliver_forever(), name="notifier"),
            asyncio.create_task(self._look_forever(gateway), name="notifier-look"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()

    async def _look_forever(self, gateway: Gateway) -> None:
        while True:
            await self.resume()
            self.look(gateway, self._clock.time())
            await self._clock.sleep(TICK_S)

    async def deliver_forever(self) -> None:
        claims = asyncio.create_task(self._claim_forever(), name="notifier-record")
        try:
            while True:
                await self.deliver(await self._ready.get())
        finally:
            claims.cancel()
            await asyncio.gather(claims, return_exceptions=True)

    async def _claim_forever(self) -> None:
        while True:
            await self.claim_next()

    @property
    def queued(self) -> int:
        return self._queue.qsize()

    async def claim_next(self) -> None:
        """Wait for the next message and record it pending, unless a leader recorded it already."""
        message = await self._queue.get()
        if await self._claimed(message):
            self._ready.put_nowait(message)

    async def deliver_next(self) -> None:
        """Record the next message, then deliver what is recorded and not yet sent."""
        await self.claim_next()
        while not self._ready.empty():
            await self.deliver(self._ready.get_nowait())

    async def _claimed(self, message: Message) -> bool:
        """Record a new message pending; False when a leader recorded it already. Without the
        database the message is still sent: better unrecorded than lost."""
        if self._record is None or message.resumed:
            return True
        stored = StoredMessage(message.event, self._channel, message.title, message.body, 0)
        try:
            return await self._record.claim_notification(stored, self._clock.time())
        except StoreError:
            return True

    async def _mark(self, message: Message, state: str, attempts: int) -> None:
        if self._record is None:
            return
        # A failure is logged by the store; a new leader may then send the message again.
        with contextlib.suppress(StoreError):
            await self._record.mark_notification(
                message.event, self._channel, state, attempts, self._clock.time()
            )

    async def deliver(self, message: Message) -> bool:
        """Send one message, retrying with backoff; False (and counted as dropped) when it never went."""
        kind = message.event.split("|", 1)[0]
        for attempt in range(1, self._attempts + 1):
            try:
                delivered = await self._send(message.title, message.body)
            except Exception as exc:  # a notifier's failure must not end the task; its text may hold the URL
                log.warning("notification failed", kind=kind, attempt=attempt, error=type(exc).__name__)
                delivered = False
            if delivered:
                self.counts["sent"] += 1
                await self._mark(message, "sent", attempt)
                return True
            if attempt < self._attempts:
                self.counts["retried"] += 1
                await self._clock.sleep(min(self._backoff_s * 2 ** (attempt - 1), BACKOFF_MAX_S))
        self.counts["dropped"] += 1
        log.error("notification dropped after retries", kind=kind, attempts=self._attempts)
        await self._mark(message, "dropped", self._attempts)
        return False
