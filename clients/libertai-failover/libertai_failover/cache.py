"""The monitor's answers, per model, and when to ask again: no I/O here.

The transports ask `want(model)` before every request. The first request for a model fetches at
once and waits (bounded by the monitor timeout); others that arrive meanwhile wait for that one
fetch. After that, an answer older than `refresh` seconds is fetched again in the background, at
most once per `refresh` seconds per model whatever the outcome, with the last ETag so an unchanged
answer costs a 304. A failed fetch keeps the last answer; without one, requests go to the gateway.
"""

from __future__ import annotations

import contextlib
import enum
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import quote

from libertai_failover.answers import MAX_ANSWER_BYTES, Answer, parse_answer
from libertai_failover.clock import Clock

__all__ = ["AnswerCache", "Download", "Fetch", "Want"]


class Ready(Protocol):
    """`threading.Event` or `asyncio.Event`: set once the first fetch of a model is over."""

    def set(self) -> None: ...


class Want(enum.Enum):
    NOTHING = "nothing"  # use the current answer
    FETCH_AND_WAIT = "fetch_and_wait"  # first request for this model: fetch now, then route
    WAIT = "wait"  # another request is fetching the first answer: wait for it
    BACKGROUND = "background"  # stale: fetch in the background, route on the current answer


@dataclass(frozen=True, slots=True)
class Fetch:
    model: str
    url: str
    headers: dict[str, str]


@dataclass(slots=True)
class _Entry:
    ready: Any  # a Ready
    answer: Answer | None = None
    unknown: bool = False  # the monitor answered 404: it does not know this model
    etag: str | None = None
    asked_at: float = float("-inf")
    in_flight: bool = False
    settled: bool = False  # the first fetch is over, whatever its outcome


@dataclass
class AnswerCache:
    monitor_url: str
    refresh: float
    clock: Clock
    new_ready: Callable[[], Any]
    _entries: dict[str, _Entry] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def want(self, model: str) -> tuple[Want, Fetch | None, Any]:
        """What the caller must do before routing a request for `model`: (what, fetch, ready)."""
        now = self.clock.monotonic()
        with self._lock:
            entry = self._entries.get(model)
            if entry is None:
                entry = self._entries[model] = _Entry(self.new_ready())
                return Want.FETCH_AND_WAIT, self._start(model, entry, now), entry.ready
            if not entry.settled:
                return Want.WAIT, None, entry.ready
            if entry.in_flight or now - entry.asked_at < self.refresh:
                return Want.NOTHING, None, None
            return Want.BACKGROUND, self._start(model, entry, now), None

    def _start(self, model: str, entry: _Entry, now: float) -> Fetch:
        entry.in_flight = True
        entry.asked_at = now
        headers = {"Accept": "application/json"}
        if entry.etag is not None:
            headers["If-None-Match"] = entry.etag
        return Fetch(model, f"{self.monitor_url}/v1/best/{quote(model, safe='')}", headers)

    def current(self, model: str) -> Answer | None:
        """The answer to route on; None sends the request to the gateway."""
        entry = self._entries.get(model)
        return None if entry is None or entry.unknown else entry.answer

    def got(self, fetch: Fetch, status: int, etag: str | None, body: bytes) -> None:
        """The monitor answered `status`; anything but 200, 304 and 404 counts as a failure."""
        if status == 200:
            try:
                answer = parse_answer(fetch.model, body)
            except ValueError:
                self.failed(fetch)
                return
            self._settle(fetch, (answer, etag, False))
        elif status == 304:
            self._settle(fetch)
        elif status == 404:
            self._settle(fetch, (None, None, True))
        else:
            self.failed(fetch)

    @contextlib.contextmanager
    def fetching(self, fetch: Fetch) -> Iterator[Download]:
        """Around one fetch by either transport: a failure (unreachable, broken) keeps the last
        answer and is swallowed; a cancellation keeps it too, and propagates."""
        download = Download()
        try:
            yield download
        except BaseException as exc:
            self.failed(fetch)
            if not isinstance(exc, Exception):
                raise

    def failed(self, fetch: Fetch) -> None:
        """The monitor could not be read: keep what we had."""
        self._settle(fetch)

    def _settle(self, fetch: Fetch, new: tuple[Answer | None, str | None, bool] | None = None) -> None:
        with self._lock:
            entry = self._entries[fetch.model]
            if new is not None:
                entry.answer, entry.etag, entry.unknown = new
            entry.in_flight = False
            first, entry.settled = not entry.settled, True
        if first:
            entry.ready.set()


class Download:
    """The body of one fetch as it arrives, read no further than one byte past `MAX_ANSWER_BYTES`
    (which `parse_answer` then refuses)."""

    __slots__ = ("body",)

    def __init__(self) -> None:
        self.body = b""

    def add(self, chunk: bytes) -> bool:
        """Take the next chunk; True once the body is too big to be worth reading on."""
        self.body += chunk
        return len(self.body) > MAX_ANSWER_BYTES
