"""Sending the notices (`monitor.core.notices`) through Apprise, on its own task.

Decisions are taken where changes happen (the recorder's subscriber, and a look at discovery's
status on each tick); only the leader queues what they decide, so a follower that sees the same
changes sends nothing. The queue is bounded and its task delivers with retries and backoff on the
injected clock: a notifier that fails never holds up probing, and a message still undelivered
after `attempts` tries is dropped and counted (`libertai_monitor_notifications_total{state}`).

The URLs hold tokens: they stay in a `Secret` up to Apprise, errors are logged by type only,
and Apprise's own lines below warning (which show URLs) are not let through.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Final, Protocol

from monitor.config import Settings
from monitor.core.clock import Clock
from monitor.core.health import HostHealth
from monitor.core.keys import HostKey
from monitor.core.notices import Notice, Notices, render
from monitor.core.results import Outcome
from monitor.core.secret import Secret
from monitor.core.snapshot import DiscoveryStatus
from monitor.logging import get_logger

log = get_logger("monitor.service")

Send = Callable[[str, str], Awaitable[bool]]  # (title, body) -> delivered
TICK_S: Final = 5.0  # how often held notices and discovery's status are looked at
QUEUE_SIZE: Final = 1000
ATTEMPTS: Final = 6
BACKOFF_S: Final = 5.0  # doubled per attempt
BACKOFF_MAX_S: Final = 300.0


class Gateway(Protocol):
    @property
    def status(self) -> DiscoveryStatus: ...
    @property
    def key_outcome(self) -> Outcome | None: ...


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
    ) -> None:
        self._notices = notices
        self._send = send
        self._clock = clock
        self._leading = leading
        self._public_url = public_url
        self._attempts = attempts
        self._backoff_s = backoff_s
        self._queue: asyncio.Queue[Notice] = asyncio.Queue(queue_size)
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
    ) -> Notifier | None:
        if settings.notify_urls is None:
            return None

        def quiet(model: str, host: str, at: float) -> bool:
            return in_maintenance(HostKey(model, host), at)

        notices = Notices(settings.notify_min_interval, settings.notify_gateway_after, quiet)
        send = apprise_sender(settings.notify_urls)
        return cls(notices, send, clock, leading=leading, public_url=settings.public_url)

    def note_state(self, before: HostHealth, after: HostHealth, at: float) -> None:
        """A subscriber of the recorder's state changes."""
        decided = self._notices.host_changed(
            after.model, after.host, before.state, after.state, after.reason, at
        )
        self._queue_all(decided)

    def look(self, gateway: Gateway, now: float) -> None:
        """Held notices whose interval is over, and what discovery's last run and key check say."""
        status = gateway.status
        if status.last_attempt_at is not None and status.last_attempt_at != self._seen_attempt:
            self._seen_attempt = status.last_attempt_at
            self._queue_all(self._notices.gateway(bool(status.ok), status.last_attempt_at, status.error))
        self._queue_all(self._notices.key(gateway.key_outcome, now))
        self._queue_all(self._notices.tick(now))

    def _queue_all(self, notices: list[Notice]) -> None:
        if not notices or not self._leading():
            return
        for notice in notices:
            try:
                self._queue.put_nowait(notice)
            except asyncio.QueueFull:
                self.counts["dropped"] += 1
                log.warning("notification dropped: the queue is full", kind=notice.kind, model=notice.model)

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
            await self._clock.sleep(TICK_S)
            self.look(gateway, self._clock.time())

    async def deliver_forever(self) -> None:
        while True:
            notice = await self._queue.get()
            await self.deliver(notice)

    async def deliver(self, notice: Notice) -> bool:
        """Send one notice, retrying with backoff; False (and counted as dropped) when it never went."""
        title, body = render(notice, self._public_url)
        for attempt in range(1, self._attempts + 1):
            try:
                delivered = await self._send(title, body)
            except Exception as exc:  # a notifier's failure must not end the task; its text may hold the URL
                log.warning(
                    "notification failed", kind=notice.kind, attempt=attempt, error=type(exc).__name__
                )
                delivered = False
            if delivered:
                self.counts["sent"] += 1
                return True
            if attempt < self._attempts:
                self.counts["retried"] += 1
                await self._clock.sleep(min(self._backoff_s * 2 ** (attempt - 1), BACKOFF_MAX_S))
        self.counts["dropped"] += 1
        log.error("notification dropped after retries", kind=notice.kind, attempts=self._attempts)
        return False
