"""One probe target run: the probe, its result recorded, and a confirmation re-probe if asked.

Throughput and identity probes are billed and judge only what a working host sends: they are made
only of a host that is up when their turn comes. A paths probe is free and made of any host that is
not down. All three are rare: a turn skipped for the host's state, or a paths probe that left some
path unknown, is made again after `retry_after` seconds (the completion cadence), one retry pending
at most, rather than a whole interval later; so a host first seen down is measured soon after it
comes up.
"""

from __future__ import annotations

from typing import Protocol

from monitor.core.clock import Clock
from monitor.core.keys import HostKey
from monitor.core.results import HostState, ProbeKind, ProbeResult
from monitor.core.upstream import is_reasoning
from monitor.parts.fleet import Fleet
from monitor.parts.recorder import Recorder
from monitor.parts.targets import Target, Targets

_RARE = frozenset({ProbeKind.THROUGHPUT, ProbeKind.IDENTITY, ProbeKind.PATHS})


class ProberPort(Protocol):
    """What is used of `monitor.probe.prober.Prober` (which never raises but to cancel)."""

    async def auth(self, host: str, model: str) -> ProbeResult: ...
    async def probe(
        self, kind: ProbeKind, host: str, model: str, *, reasoning: bool = False
    ) -> ProbeResult: ...


class TargetRunner:
    def __init__(
        self,
        prober: ProberPort,
        fleet: Fleet,
        recorder: Recorder,
        targets: Targets,
        confirm_delay: float,
        retry_after: float | None = None,
        clock: Clock | None = None,
    ) -> None:
        self._prober = prober
        self._fleet = fleet
        self._recorder = recorder
        self._targets = targets
        self._confirm_delay = confirm_delay
        self._retry_after = retry_after
        self._clock = clock
        self._retry_at: dict[Target, float] = {}  # a rare target's one pending retry

    async def probe(self, target: Target) -> ProbeResult:
        model, host, kind = target
        if kind is ProbeKind.AUTH:
            # The host auth check is per host: any one of its models names the request.
            return await self._prober.auth(host, self._fleet.any_model_of(host))
        # A reasoning model's base id is probed with thinking off, as the gateway sends it.
        return await self._prober.probe(kind, host, model, reasoning=is_reasoning(model, self._fleet.aliases))

    async def probe_and_record(self, target: Target) -> bool:
        """True when the failure it found should be confirmed at once (see `Recorder.record`)."""
        return self._recorder.record(await self.probe(target))

    def wanted(self, target: Target) -> bool:
        """Whether `target` is to be probed now: throughput and identity only while its host is up,
        paths while it is not down."""
        model, host, kind = target
        if kind is ProbeKind.PATHS:
            h = self._fleet.health.get(HostKey(model, host))
            return h is not None and h.state is not HostState.DOWN
        if kind is not ProbeKind.THROUGHPUT and kind is not ProbeKind.IDENTITY:
            return True
        h = self._fleet.health.get(HostKey(model, host))
        return h is not None and h.state is HostState.UP

    def _retry(self, target: Target) -> None:
        """One retry of a rare target, unless one is pending already (retries never pile up)."""
        if self._retry_after is None or self._clock is None:
            return
        now = self._clock.monotonic()
        if self._retry_at.get(target, now) > now:
            return
        self._retry_at[target] = now + self._retry_after
        self._targets.soon(target, self._retry_after)

    async def run(self, target: Target) -> None:
        """The dispatcher's run of a target: a failure to confirm gets one extra probe soon."""
        kind = target[2]
        if not self.wanted(target):
            if kind in _RARE:
                self._retry(target)
            return
        if kind in _RARE:
            result = await self.probe(target)
            self._recorder.record(result)
            if result.ok or kind is not ProbeKind.PATHS:
                self._retry_at.pop(target, None)
            else:
                self._retry(target)
            return
        if await self.probe_and_record(target):
            self._targets.soon(target, self._confirm_delay)
