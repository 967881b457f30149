"""Probe targets: which probes each member gets, how often, and their place in the dispatcher.

A target is (model, host, kind). The decisions (kinds per model, interval per state, the ramp of
first probes) are pure functions of the settings and a host's health; `Targets` only keeps the
dispatcher's set of targets in step with the fleet while the service runs. Every member that gets
completion probes also gets a throughput probe every `throughput_interval` and an identity probe
every `identity_interval`, the first soon after it is first seen (both made only while its host is
up: `monitor.parts.target_runner`); every member that gets billed probes also gets a free paths
probe every `paths_interval` (`monitor.core.paths`).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from typing import Protocol

from monitor.config import Settings
from monitor.core.clock import Clock
from monitor.core.health import HostHealth
from monitor.core.keys import HostKey
from monitor.core.results import HostState, ProbeKind
from monitor.core.steps import Steps, for_each

# Targets: (model, host, kind). The host auth check is per host, so its model is "".
Target = tuple[str, str, ProbeKind]
HOST_WIDE = ""
_SERVING = (ProbeKind.COMPLETION, ProbeKind.EMBEDDING)
# Probes on their own interval whatever the host's health: never sped up for a down host.
_RARE = (ProbeKind.THROUGHPUT, ProbeKind.IDENTITY, ProbeKind.PATHS)


class TargetSet(Protocol):
    """What `Targets` needs of the dispatcher (`monitor.parts.dispatcher.Dispatcher`)."""

    def __len__(self) -> int: ...
    def __contains__(self, target: object) -> bool: ...
    def add(self, target: Target, *, first_within: float | None = None, not_before: float = 0.0) -> None: ...
    def remove(self, target: Target) -> None: ...
    def soon(self, target: Target, delay: float) -> None: ...


def probe_kinds(model: str, settings: Settings) -> tuple[ProbeKind, ...]:
    """Which probes a model gets: image and audio only free ones; billed ones only when enabled."""
    if any(fnmatch.fnmatchcase(model, g) for g in settings.health_only_models):
        return (ProbeKind.HEALTH,)
    if not settings.completion_probes or settings.api_key is None:
        return (ProbeKind.HEALTH,)
    if any(fnmatch.fnmatchcase(model, g) for g in settings.embedding_models):
        return (ProbeKind.HEALTH, ProbeKind.EMBEDDING)
    return (ProbeKind.HEALTH, ProbeKind.COMPLETION)


def target_kinds(kinds: Iterable[ProbeKind]) -> set[ProbeKind]:
    """The targets of a member whose probes are `kinds`: throughput and identity probes where
    completions are, a paths probe where billed probes are (the key it carries gets past a host's
    key check)."""
    out = set(kinds)
    if ProbeKind.COMPLETION in out:
        out.update((ProbeKind.THROUGHPUT, ProbeKind.IDENTITY))
    if out & set(_SERVING):
        out.add(ProbeKind.PATHS)
    return out


def base_interval(kind: ProbeKind, settings: Settings) -> float:
    if kind is ProbeKind.HEALTH:
        return settings.probe_interval
    if kind is ProbeKind.THROUGHPUT:
        return settings.throughput_interval
    if kind is ProbeKind.IDENTITY:
        return settings.identity_interval
    if kind is ProbeKind.PATHS:
        return settings.paths_interval
    return settings.completion_interval


def interval_of(kind: ProbeKind, h: HostHealth | None, settings: Settings) -> float:
    """Seconds to a target's next probe, given its host's health."""
    base = base_interval(kind, settings)
    if kind not in _RARE and h is not None and h.state is HostState.DOWN:
        # A down host is re-probed sooner, by the kind of probe that failed, so that its
        # recovery shows quickly (and billed probes speed up only when they are the evidence).
        failing = h.serving.failing if kind in _SERVING else h.liveness.failing
        if failing:
            return min(base, settings.down_probe_interval)
    return base


# A new member's first throughput and identity probes come within this long (or their interval, if shorter):
# soon, but spread so that a start-up does not bill every host at once.
THROUGHPUT_RAMP_S = 30.0


def first_within(kind: ProbeKind, hosts: int, settings: Settings) -> float:
    """Spread a new target's first probe over a short ramp so first answers come quickly."""
    if kind in _RARE:
        return min(THROUGHPUT_RAMP_S, base_interval(kind, settings))
    ramp = max(5.0, max(hosts, 1) / 200.0)
    return min(ramp, base_interval(kind, settings))


def since_last(kind: ProbeKind, h: HostHealth | None, now: float, settings: Settings) -> float:
    """Seconds until a target is due, judged by its last probe (restored from history): a
    restart does not probe, nor bill, everything again at once."""
    last = h.samples.latest(kind) if h else None
    if last is None:
        return 0.0
    return max(0.0, last + base_interval(kind, settings) - now)


class Targets:
    """The dispatcher's targets, kept in step with the fleet; nothing before `attach`."""

    def __init__(self, settings: Settings, clock: Clock) -> None:
        self._settings = settings
        self._clock = clock
        self._set: TargetSet | None = None
        self._auth: set[Target] = set()

    def attach(self, targets: TargetSet) -> None:
        self._set = targets

    def detach(self) -> None:
        """No dispatcher any more (this process stopped probing): targets are kept nowhere."""
        self._set = None
        self._auth = set()

    def __len__(self) -> int:
        return len(self._set) if self._set is not None else 0

    def soon(self, target: Target, delay: float) -> None:
        if self._set is not None:
            self._set.soon(target, delay)

    def set_kinds(self, key: HostKey, kinds: Iterable[ProbeKind], h: HostHealth | None, hosts: int) -> None:
        """Make `key`'s targets exactly those of `kinds` (`target_kinds`; a new one is placed by
        `first_within`/`since_last`)."""
        d = self._set
        if d is None:
            return
        keep = target_kinds(kinds)
        for kind in ProbeKind:
            if kind is ProbeKind.AUTH:
                continue
            target = (key[0], key[1], kind)
            if kind in keep:
                if target not in d:
                    s = self._settings
                    d.add(
                        target,
                        first_within=first_within(kind, hosts, s),
                        not_before=since_last(kind, h, self._clock.time(), s),
                    )
            elif target in d:
                d.remove(target)

    def set_auth_hosts(self, hosts: set[str], count: int, per_step: int) -> Steps[None]:
        """One auth check per trusted host (none without a key), in steps of `per_step` hosts."""
        d = self._set
        if d is None:
            return
        if self._settings.api_key is None:
            hosts = set()  # without a key there is nothing to check
        ramp = first_within(ProbeKind.AUTH, count, self._settings)
        wanted: set[Target] = set()

        def add(host: str) -> None:
            target = (HOST_WIDE, host, ProbeKind.AUTH)
            d.add(target, first_within=ramp)
            wanted.add(target)

        def drop(target: Target) -> None:
            if target not in wanted:
                d.remove(target)

        yield from for_each(hosts, add, per_step)
        yield from for_each(list(self._auth), drop, per_step)
        self._auth = wanted
