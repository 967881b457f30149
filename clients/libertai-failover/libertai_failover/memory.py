"""What a transport remembers between requests to spread them: which host each conversation is on,
how many requests it has in flight per host, and how many hedged tries it made lately. Bounded,
thread-safe, on an injected clock; no I/O."""

from __future__ import annotations

import threading
from collections import OrderedDict, deque

from libertai_failover.clock import Clock

__all__ = ["Affinity", "HedgeBudget", "InFlight"]


class Affinity:
    """Conversation key (a hash) -> host, the least recently used dropped beyond `size`, and any
    unused for `ttl` seconds forgotten (as the gateway's 30-minute preferred-instance cookie)."""

    def __init__(self, clock: Clock, size: int = 10_000, ttl: float = 1800.0) -> None:
        self._clock = clock
        self._size = size
        self._ttl = ttl
        self._hosts: OrderedDict[str, tuple[str, float]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> str | None:
        now = self._clock.monotonic()
        with self._lock:
            found = self._hosts.get(key)
            if found is None:
                return None
            if now - found[1] > self._ttl:
                del self._hosts[key]
                return None
            return found[0]

    def bind(self, key: str, host: str) -> None:
        now = self._clock.monotonic()
        with self._lock:
            self._hosts[key] = (host, now)
            self._hosts.move_to_end(key)
            while len(self._hosts) > self._size:
                self._hosts.popitem(last=False)
            # The oldest entries expire first: drop the expired ones at the old end.
            while self._hosts:
                oldest = next(iter(self._hosts.values()))
                if now - oldest[1] <= self._ttl:
                    break
                self._hosts.popitem(last=False)

    def __len__(self) -> int:
        return len(self._hosts)


class InFlight:
    """Requests this transport has in flight per host, from a try's start to its body's close."""

    def __init__(self) -> None:
        self._counts: dict[str, int] = {}
        self._lock = threading.Lock()

    def add(self, host: str, n: int) -> None:
        with self._lock:
            count = self._counts.get(host, 0) + n
            if count > 0:
                self._counts[host] = count
            else:
                self._counts.pop(host, None)

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)


class HedgeBudget:
    """Hedged tries at most `share` of the requests of the last `window` seconds."""

    def __init__(self, clock: Clock, share: float, window: float = 60.0) -> None:
        self._clock = clock
        self._share = share
        self._window = window
        self._requests: deque[float] = deque()
        self._hedges: deque[float] = deque()
        self._lock = threading.Lock()

    def _trim(self, now: float) -> None:
        for times in (self._requests, self._hedges):
            while times and now - times[0] > self._window:
                times.popleft()

    def request(self) -> None:
        now = self._clock.monotonic()
        with self._lock:
            self._trim(now)
            self._requests.append(now)

    def take(self) -> bool:
        """True (and counted) when one more hedged try stays within the budget."""
        now = self._clock.monotonic()
        with self._lock:
            self._trim(now)
            if len(self._hedges) + 1 > self._share * len(self._requests):
                return False
            self._hedges.append(now)
            return True
