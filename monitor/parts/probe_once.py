"""`libertai-monitor probe-once`: one discovery and one probe of every target, then a snapshot."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Protocol

from monitor.config import Settings
from monitor.core.clock import Clock
from monitor.core.results import ProbeKind
from monitor.parts.fleet import Fleet
from monitor.parts.target_runner import TargetRunner
from monitor.parts.targets import HOST_WIDE, Target, probe_kinds


class Discovers(Protocol):
    """One discovery run that applies the list it finds to the fleet (`DiscoveryRun`)."""

    async def run(self) -> None: ...


def all_targets(fleet: Fleet, settings: Settings) -> list[Target]:
    """Every target of the trusted members, auth checks included when there is a key."""
    targets: list[Target] = []
    for (model, host), h in fleet.health.items():
        if h.trusted:
            targets.extend((model, host, k) for k in probe_kinds(model, settings))
    if settings.api_key is not None:
        hosts = {h for (_, h), v in fleet.health.items() if v.trusted}
        targets.extend((HOST_WIDE, h, ProbeKind.AUTH) for h in hosts)
    return targets


async def probe_once(
    settings: Settings,
    clock: Clock,
    discovery: Discovers,
    fleet: Fleet,
    runner: TargetRunner,
    publish_now: Callable[[], None],
) -> None:
    await discovery.run()
    sem = asyncio.Semaphore(settings.max_concurrency)

    async def one(t: Target) -> bool:
        async with sem:
            return await runner.probe_and_record(t)

    # As the running service does, a failure is confirmed by re-probing at once rather than
    # taken as a verdict, until the host is down or recovers (at most the threshold).
    pending = all_targets(fleet, settings)
    for attempt in range(settings.unhealthy_threshold):
        if attempt:
            await clock.sleep(settings.confirm_delay)
        confirm = await asyncio.gather(*(one(t) for t in pending))
        pending = [t for t, again in zip(pending, confirm, strict=True) if again]
        if not pending:
            break
    publish_now()
