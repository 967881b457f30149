"""Which hosts serve which model, with a grace period: a pure diff of successive gateway listings.

`apply_listing` is called with each GOOD listing only (a failed or invalid discovery changes
nothing: a gateway outage is not a host outage). Rules, per (model, host):

- listed and not a member: joins now (`joined`), trusted if the allow-list admits it;
- listed and a member: `last_seen` = now; if it had been missing it simply continues
  (`missing_since` cleared, `first_seen` kept) and a `joined` change records its return;
- a member not listed (its model may be missing altogether): the first time, `missing_since` =
  now and a `left` change; it stays a member (still probed and reported) until it has been missing
  for `grace_s`, then it is removed with a `retired` change. With `grace_s <= 0` a host leaves and
  retires in the same call.

A model stays in the membership while it is listed (even with no servers) or has members left.
Untrusted hosts are members with `trusted=False`: they are reported, never sent the key.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Final, Literal

from monitor.core.steps import Steps, for_each
from monitor.core.urls import AllowList

__all__ = [
    "MEMBERSHIP_EVENTS",
    "MemberInfo",
    "Membership",
    "MembershipChange",
    "MembershipEvent",
    "apply_listing",
]

MembershipEvent = Literal["joined", "left", "retired"]
MEMBERSHIP_EVENTS: Final[tuple[MembershipEvent, ...]] = ("joined", "left", "retired")


@dataclass(frozen=True, slots=True)
class MemberInfo:
    first_seen: float
    last_seen: float
    trusted: bool
    missing_since: float | None = None

    @property
    def missing(self) -> bool:
        return self.missing_since is not None


@dataclass(frozen=True, slots=True)
class MembershipChange:
    """One host joining, leaving or retiring from a model, at `at`: what the fleet logs, the store
    records and a follower reads back."""

    at: float
    model: str
    host: str
    event: MembershipEvent


def _freeze(models: Mapping[str, Mapping[str, MemberInfo]]) -> Mapping[str, Mapping[str, MemberInfo]]:
    return MappingProxyType({m: MappingProxyType(dict(h)) for m, h in models.items()})


@dataclass(frozen=True, slots=True, eq=False)
class Membership:
    """Immutable: model -> host -> MemberInfo, in first-listed order. Build new ones with
    `apply_listing`; `Membership()` is the empty membership."""

    models: Mapping[str, Mapping[str, MemberInfo]] = field(default_factory=lambda: MappingProxyType({}))

    @classmethod
    def of(cls, models: Mapping[str, Mapping[str, MemberInfo]]) -> Membership:
        """Build from plain mappings (copied and frozen), e.g. when restoring from the store."""
        return cls(_freeze(models))

    def hosts(self, model: str) -> Mapping[str, MemberInfo]:
        return self.models.get(model, MappingProxyType({}))

    def get(self, model: str, host: str) -> MemberInfo | None:
        return self.hosts(model).get(host)

    def trusted_hosts(self, model: str) -> tuple[str, ...]:
        return tuple(h for h, info in self.hosts(model).items() if info.trusted)

    def pairs(self) -> Iterator[tuple[str, str, MemberInfo]]:
        """Every (model, host, info)."""
        for model, hosts in self.models.items():
            for host, info in hosts.items():
                yield model, host, info

    def __len__(self) -> int:
        """The number of (model, host) members."""
        return sum(len(h) for h in self.models.values())

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Membership):
            return NotImplemented
        return {m: dict(h) for m, h in self.models.items()} == {m: dict(h) for m, h in other.models.items()}

    __hash__ = None  # type: ignore[assignment]


# Hosts handled per step of `apply_listing`: a few milliseconds of work.
CHUNK_HOSTS = 500

# The new membership and the changes that led to it.
Diff = tuple[Membership, list[MembershipChange]]


def apply_listing(
    current: Membership, listing: Mapping[str, Sequence[str]], allow: AllowList, now: float, grace_s: float
) -> Steps[Diff]:
    """Diff a good listing (model -> normalised host URLs) into the membership (see module doc),
    in steps of `CHUNK_HOSTS` hosts. `current` is immutable: nothing done between steps changes it."""
    changes: list[MembershipChange] = []
    result: dict[str, dict[str, MemberInfo]] = {model: {} for model in listing}

    def listed(pair: tuple[str, str]) -> None:
        model, host = pair
        members = result[model]
        if host in members:
            return
        trusted = allow.admits(host)
        info = current.get(model, host)
        if info is None:
            members[host] = MemberInfo(first_seen=now, last_seen=now, trusted=trusted)
            changes.append(MembershipChange(now, model, host, "joined"))
            return
        if info.missing_since is not None:
            changes.append(MembershipChange(now, model, host, "joined"))
        members[host] = MemberInfo(first_seen=info.first_seen, last_seen=now, trusted=trusted)

    def unlisted(member: tuple[str, str, MemberInfo]) -> None:
        model, host, info = member
        kept = result.get(model)
        if kept is not None and host in kept:
            return
        missing_since = info.missing_since
        if missing_since is None:
            missing_since = now
            changes.append(MembershipChange(now, model, host, "left"))
        if now - missing_since >= grace_s:
            changes.append(MembershipChange(now, model, host, "retired"))
            return
        still = info if info.missing_since is not None else replace(info, missing_since=now)
        result.setdefault(model, {})[host] = still

    yield from for_each(((m, h) for m, hosts in listing.items() for h in hosts), listed, CHUNK_HOSTS)
    yield from for_each(current.pairs(), unlisted, CHUNK_HOSTS)
    return Membership.of(result), changes
