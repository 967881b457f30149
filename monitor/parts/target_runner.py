"""One probe target run: the probe, its result recorded, and a confirmation re-probe if asked.

A throughput probe is billed and measures only what a working host sends: it is made only of a
host that is up when its turn comes (else skipped until the next). A paths probe is free but rare:
of a host that is down when its turn comes, or that left some path unknown, it is made again after
`paths_retry` seconds (the completion cadence) rather than a whole `paths_interval` later.
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
        paths_retry: float | None = None,
        clock: Clock | None = None,
    ) -> None:
        self._prober = prober
        self._fleet = fleet
        self._recorder = recorder
        self._targets = targets
        self._confirm_delay = confirm_delay
        self._paths_retry = paths_retry
        self._clock = clock
        self._retry_at: dict[Target, float] = {}  # a paths target's one pending retry

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
        """Whether `target` is to be probed now: a throughput probe only while its host is up."""
        model, host, kind = target
        if kind is ProbeKind.PATHS:
            h = self._fleet.health.get(HostKey(model, host))
            return h is not None and h.state is not HostState.DOWN
        if kind is not ProbeKind.THROUGHPUT:
            return True
        h = self._fleet.health.get(HostKey(model, host))
        return h is not None and h.state is HostState.UP

    def _retry_paths(self, target: Target) -> None:
        """One retry of a paths target, unless one is pending already (retries never pile up)."""
        if self._paths_retry is None or self._clock is None:
            return
        now = self._clock.monotonic()
        if self._retry_at.get(target, now) > now:
            return
        self._retry_at[target] = now + self._paths_retry
        self._targets.soon(target, self._paths_retry)

    async def run(self, target: Target) -> None:
        """The dispatcher's run of a target: a failure to confirm gets one extra probe soon."""
        paths = target[2] is ProbeKind.PATHS
        if not self.wanted(target):
            if paths:
                self._retry_paths(target)
            return
        if paths:
            result = await self.probe(target)
            self._recorder.record(result)
            if result.ok:
                self._retry_at.pop(target, None)
            else:
                self._retry_paths(target)
            return
        if await self.probe_and_record(target):
            self._targets.soon(target, self._confirm_delay)
