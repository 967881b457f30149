"""Throughput of a (model, host): output tokens per second and the median gap between tokens.

Every `throughput_interval` (1800 s by default) each up host of a text model gets one billed,
streamed chat completion of `throughput_tokens` (16) output tokens, prompt starting with a fresh
nonce like the completion probe's. What it measures, from the arrival times of the chunks that
carry text (content or reasoning; not the role-only or finish chunks):

* `tokens`: the host's `usage.completion_tokens` when it sends usage, else the chunks counted;
* `tokens_per_s`: (tokens - 1) / (last text chunk - first text chunk), the decode rate a client
  sees once the first token is there (the first token's wait is what `ttft` measures);
* `inter_token_ms_p50`: the median (nearest-rank, as everywhere in the monitor) gap between text
  chunks, divided by the tokens per gap when usage says a chunk carried several.

Throughput is not health evidence: a failed measurement changes no state and is only counted; the
last successful one is shown (`/v1/hosts`, metrics) and ranks hosts for `/v1/best?sort=throughput`.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
from yarl import URL

from monitor.core.clock import SYSTEM_CLOCK, Clock
from monitor.core.percentile import percentile
from monitor.core.results import Outcome, ProbeKind
from monitor.core.secret import Secret
from monitor.core.urls import AllowList
from monitor.parts.scheduler import ProbeDispatcher
from monitor.probe.bodies import new_nonce, stream_body
from monitor.probe.http import BodyTooLarge, classify_exception, read_bounded
from monitor.probe.prober import classify_status, error_detail

__all__ = ["Throughput", "ThroughputProbes", "by_throughput", "measure", "probe_throughput", "text_chunk"]

_MAX_BODY = 256 * 1024
Key = tuple[str, str]  # (model, host)


@dataclass(frozen=True, slots=True)
class Throughput:
    model: str
    host: str
    at: float  # epoch seconds the measurement started
    outcome: Outcome
    tokens: int = 0
    tokens_per_s: float | None = None
    inter_token_ms_p50: float | None = None
    detail: str = ""


def measure(arrivals_s: Sequence[float], usage_tokens: int | None) -> tuple[int, float | None, float | None]:
    """(tokens, tokens per second, median inter-token gap in ms) from the arrival times (seconds,
    any origin) of the text chunks of one stream and the host's completion token count if sent."""
    chunks = len(arrivals_s)
    tokens = usage_tokens if usage_tokens is not None and usage_tokens > 0 else chunks
    if chunks < 2 or tokens < 2:
        return tokens, None, None
    span = arrivals_s[-1] - arrivals_s[0]
    gaps = [b - a for a, b in itertools.pairwise(arrivals_s)]
    per_gap = (tokens - 1) / (chunks - 1)  # tokens a chunk brought, when usage says more than one
    p50 = percentile(gaps, 50)
    rate = (tokens - 1) / span if span > 0 else None
    return tokens, rate, None if p50 is None else p50 * 1000.0 / per_gap


def text_chunk(obj: Mapping[str, Any]) -> bool:
    """Whether a stream chunk carries generated text (chat delta content or reasoning, or a legacy
    completion's text)."""
    choices = obj.get("choices")
    if not isinstance(choices, list):
        return False
    for choice in choices:
        if not isinstance(choice, dict):
            continue
        delta = choice.get("delta")
        if isinstance(delta, dict) and any(
            isinstance(delta.get(k), str) and delta.get(k)
            for k in ("content", "reasoning_content", "reasoning")
        ):
            return True
        if isinstance(choice.get("text"), str) and choice["text"]:
            return True
    return False


def _usage_tokens(obj: Mapping[str, Any]) -> int | None:
    usage = obj.get("usage")
    if isinstance(usage, dict):
        n = usage.get("completion_tokens")
        if isinstance(n, int) and not isinstance(n, bool) and n >= 0:
            return n
    return None


async def probe_throughput(
    session: aiohttp.ClientSession,
    key: Secret,
    host: str,
    model: str,
    *,
    tokens: int,
    timeout_s: float,
    allow: AllowList,
    reasoning: bool = False,
) -> Throughput:
    """One streamed completion of `tokens` tokens; never raises (but for cancellation)."""
    at = time.time()
    if not allow.admits(host):
        return Throughput(model, host, at, Outcome.NOT_PROBED, detail="host not admitted")
    url = URL(f"{host}/v1/chat/completions", encoded=True)
    headers = {
        "Authorization": "Bearer " + key.reveal(),
        "Content-Type": "application/json",
        "Accept": "text/event-stream",
    }
    body = stream_body(model, tokens, new_nonce(), reasoning=reasoning)
    arrivals: list[float] = []
    usage: int | None = None
    try:
        async with (
            asyncio.timeout(timeout_s),
            session.post(url, headers=headers, data=body, allow_redirects=False) as response,
        ):
            outcome = classify_status(response.status, ProbeKind.COMPLETION)
            if outcome is not Outcome.OK:
                try:
                    raw: bytes | None = await read_bounded(response, _MAX_BODY)
                except BodyTooLarge:
                    raw = None
                return Throughput(
                    model, host, at, outcome, detail=error_detail(response.status, raw, key.reveal())
                )
            size, done, pending = 0, False, b""
            while not done:
                chunk = await response.content.readany()
                if not chunk:
                    break
                arrived = time.perf_counter()
                size += len(chunk)
                if size > _MAX_BODY:
                    return Throughput(model, host, at, Outcome.BAD_RESPONSE, detail="stream too large")
                *lines, pending = (pending + chunk).split(b"\n")
                for line in lines:
                    data = line.rstrip(b"\r")
                    if not data.startswith(b"data:"):
                        continue
                    data = data[5:].strip()
                    if data == b"[DONE]":
                        done = True
                        break
                    try:
                        obj = json.loads(data)
                    except ValueError:
                        return Throughput(model, host, at, Outcome.BAD_RESPONSE, detail="unparseable chunk")
                    if not isinstance(obj, dict):
                        continue
                    if obj.get("error"):
                        return Throughput(model, host, at, Outcome.STREAM_ERROR, detail="error event")
                    if text_chunk(obj):
                        arrivals.append(arrived)
                    usage = _usage_tokens(obj) if usage is None else usage
            if not done:
                return Throughput(model, host, at, Outcome.STREAM_ERROR, detail="stream ended without [DONE]")
    except Exception as exc:  # never raise; CancelledError is a BaseException and propagates
        outcome, detail = classify_exception(exc)
        return Throughput(model, host, at, outcome, detail=detail)
    n, rate, itl = measure(arrivals, usage)
    return Throughput(model, host, at, Outcome.OK, n, rate, itl)


class ThroughputProbes:
    """Schedules a throughput probe of each (model, host) every `interval` and keeps the last
    successful measurement of each. `wanted(key)` is asked before each probe (say, the host is up):
    a throughput probe is billed, so none goes to a host that would only fail it."""

    def __init__(
        self,
        probe: Callable[[str, str], Awaitable[Throughput]],
        interval: float,
        *,
        wanted: Callable[[Key], bool],
        on_result: Callable[[Throughput], None],
        limit: int,
        jitter: float,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self._probe = probe
        self._interval = interval
        self._wanted = wanted
        self._on_result = on_result
        self._make: Callable[[], ProbeDispatcher[Key]] = lambda: ProbeDispatcher(
            self._run, lambda _: interval, limit=limit, jitter=jitter, clock=clock
        )
        self._dispatcher: ProbeDispatcher[Key] = self._make()
        self.results: dict[Key, Throughput] = {}
        self.failures = 0
        self._keys: set[Key] = set()

    def sync(self, keys: Iterable[Key]) -> None:
        """Probe exactly `keys` from now on; a new key's first probe comes within 30 s (or the
        interval, if shorter), spread so that a start-up does not bill every host at once."""
        for _ in self.sync_steps(keys):
            pass

    def sync_steps(self, keys: Iterable[Key], step: int = 500) -> Iterator[None]:
        """`sync`, yielding every `step` keys (100,000 new keys take most of a second to add)."""
        wanted = set(keys)
        d = self._dispatcher
        for n, key in enumerate(wanted - self._keys, 1):
            d.add(key, first_within=min(30.0, self._interval))
            if n % step == 0:
                yield
        for n, key in enumerate(self._keys - wanted, 1):
            d.remove(key)
            self.results.pop(key, None)
            if n % step == 0:
                yield
        self._keys = wanted

    async def _run(self, key: Key) -> None:
        if not self._wanted(key):
            return
        result = await self._probe(*key)
        if result.outcome is Outcome.OK and result.tokens_per_s is not None:
            self.results[key] = result
        else:
            self.failures += 1
        self._on_result(result)

    async def run_forever(self) -> None:
        await self._dispatcher.run_forever()

    async def close(self) -> None:
        await self._dispatcher.close()

    async def stop(self) -> None:
        """Stop probing (those in flight are cancelled) until `sync` and `run_forever` again (a
        monitor that no longer leads; the measurements made so far are kept)."""
        await self._dispatcher.close()
        self._dispatcher = self._make()
        self._keys = set()


def by_throughput(
    best: str | None, fallbacks: Sequence[str], eligible: Iterable[str], rate: Mapping[str, float | None]
) -> tuple[str | None, tuple[str, ...]]:
    """(best, fallbacks) ordered by throughput instead of time to first token: the eligible hosts
    (those that may be best) by tokens per second, highest first, unmeasured ones after in their
    latency order; then the other fallbacks as they were. Without an eligible host, as it was."""
    order = [h for h in (best, *fallbacks) if h is not None]
    allowed = set(eligible)
    contenders = [h for h in order if h in allowed]
    if best is None or not contenders:
        return best, tuple(fallbacks)

    def key(h: str) -> tuple[bool, float]:
        value = rate.get(h)
        return (value is None, -(value or 0.0))

    ranked = sorted(contenders, key=key)  # stable: ties keep their latency order
    rest = [h for h in order if h not in allowed]
    return ranked[0], (*ranked[1:], *rest)
