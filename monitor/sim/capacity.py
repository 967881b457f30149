"""The capacity of one model's inference server on a simulated host: slots, a FIFO queue, and a
prefix cache.

A llama.cpp or vLLM server generates a few sequences at once (`slots`); a request that finds them all
busy waits, first come first served, and its time to first token is the wait plus the server's own.
A slot is held for the whole request: until the answer ends or the client goes away.

The prefix cache models what those servers keep: the KV of the longest token prefix a new prompt
shares with one computed before. Here a prompt is a list of units (the Anthropic `system` field,
then each message; a completion prompt is one unit), and a request is a hit when its units begin
with ALL the units of a prompt this server started within `cache_ttl` seconds. So the same prompt
again is a hit, and so is turn n+1 of a conversation (turn n's messages, the assistant's reply, the
next user message); two prompts sharing only a system prompt are a miss (that part is small next to
a conversation's history).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

PREFIX_CACHE_LEN = 4096  # prompts one server remembers (oldest leave first)


def prompt_units(body: Mapping[str, Any]) -> list[Any]:
    """The units of a chat, messages or completion request's prompt, in order."""
    units: list[Any] = []
    system = body.get("system")
    if system is not None:
        units.append({"system": system})
    messages = body.get("messages")
    if isinstance(messages, list):
        units.extend(messages)
    elif messages is not None:
        units.append(messages)
    elif body.get("prompt") is not None:
        units.append(body["prompt"])
    return units


def prefix_digests(units: list[Any]) -> list[bytes]:
    """One digest per prefix of `units` (the first 1, 2, ... units): equal prefixes, equal digests."""
    out: list[bytes] = []
    h = b""
    for unit in units:
        data = json.dumps(unit, sort_keys=True, separators=(",", ":")).encode()
        h = hashlib.blake2b(h + data, digest_size=16).digest()
        out.append(h)
    return out


@dataclass(slots=True)
class ModelCapacity:
    """Slots, queue and prefix cache of one (host, model). The slot count is passed in on each call,
    as the host's behaviour (and so its `slots`) may change at run time."""

    in_flight: int = 0
    served: int = 0  # requests that got a slot
    cache_hits: int = 0
    cache_misses: int = 0
    _queue: deque[asyncio.Future[None]] = field(default_factory=deque)
    _prefixes: OrderedDict[bytes, float] = field(default_factory=OrderedDict)

    @property
    def queued(self) -> int:
        return sum(1 for f in self._queue if not f.done())

    @contextlib.asynccontextmanager
    async def slot(self, slots: int | None) -> AsyncIterator[bool]:
        """Hold a slot for the block; wait in line for one first if all are busy. Yields whether
        the request waited."""
        waited = await self._acquire(slots)
        try:
            yield waited
        finally:
            self.release(slots)

    async def _acquire(self, slots: int | None) -> bool:
        # A free slot is taken without yielding to the loop, so unlimited slots change no timing.
        if not self._queue and (slots is None or self.in_flight < slots):
            self.in_flight += 1
            self.served += 1
            return False
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append(fut)
        try:
            await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                self.release(slots)  # handed a slot as the client left: give it to the next
            else:
                with contextlib.suppress(ValueError):
                    self._queue.remove(fut)
            raise
        return True

    def release(self, slots: int | None) -> None:
        self.in_flight -= 1
        self.wake(slots)

    def wake(self, slots: int | None) -> None:
        """Hand free slots to the queue's head, in order (after a release or more slots)."""
        while self._queue and (slots is None or self.in_flight < slots):
            fut = self._queue.popleft()
            if fut.done():
                continue
            fut.set_result(None)
            self.in_flight += 1
            self.served += 1

    def prefix_hit(self, digests: list[bytes], now: float, ttl: float | None) -> bool:
        """Whether the prompt starts with one started within `ttl` seconds (never without a
        cache); counts the hit or miss and remembers this prompt as started `now`."""
        hit = False
        if ttl is not None:
            for d in reversed(digests):
                seen = self._prefixes.get(d)
                if seen is not None and now - seen <= ttl:
                    hit = True
                    break
            if digests:
                self._prefixes[digests[-1]] = now
                self._prefixes.move_to_end(digests[-1])
            while self._prefixes and (
                len(self._prefixes) > PREFIX_CACHE_LEN or now - next(iter(self._prefixes.values())) > ttl
            ):
                self._prefixes.popitem(last=False)
        if hit:
            self.cache_hits += 1
        else:
            self.cache_misses += 1
        return hit

    def to_json(self, slots: int | None) -> dict[str, Any]:
        return {
            "slots": slots,
            "in_flight": self.in_flight,
            "queued": self.queued,
            "served": self.served,
            "cache_hits": self.cache_hits,
            "cache_misses": self.cache_misses,
        }
