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

from collections.abc import Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Literal

from monitor.core.steps import finish
from monitor.core.urls import AllowList
from monitor.parts.slices import run_in_slices

__all__ = [
    "MemberInfo",
    "Membership",
    "MembershipChange",
    "MembershipEvent",
    "apply_listing",
    "apply_listing_async",
]

MembershipEvent = Literal["joined", "left", "retired"]


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


# Hosts handled between two turns of the event loop in `apply_listing_async`: 5-25 ms of work
# (idle to loaded machine), so a listing of 100,000 servers never stalls probes or `/healthz` long.
CHUNK_HOSTS = 500

# The new membership and the changes that led to it.
Diff = tuple[Membership, list[MembershipChange]]


def apply_listing(
    current: Membership, listing: Mapping[str, Sequence[str]], allow: AllowList, now: float, grace_s: float
) -> Diff:
    """Diff a good listing (model -> normalised host URLs) into the membership (see module doc)."""
    return finish(_apply(current, listing, allow, now, grace_s))


async def apply_listing_async(
    current: Membership, listing: Mapping[str, Sequence[str]], allow: AllowList, now: float, grace_s: float
) -> Diff:
    """`apply_listing`, giving the event loop a turn every `CHUNK_HOSTS` hosts.

    The same result; `current` is immutable, so nothing another task does meanwhile can change it.
    """
    return await run_in_slices(_apply(current, listing, allow, now, grace_s), 0.0)  # a turn per chunk


def _apply(
    current: Membership,
    listing: Mapping[str, Sequence[str]],
    allow: AllowList,
    now: float,
    grace_s: float,
) -> Generator[None, None, Diff]:
    """The diff, yielding every `CHUNK_HOSTS` hosts (where the async caller lets the loop run)."""
    changes: list[MembershipChange] = []
    result: dict[str, dict[str, MemberInfo]] = {}
    seen = 0

    for model, hosts in listing.items():
        before = current.hosts(model)
        members: dict[str, MemberInfo] = {}
        for host in hosts:
            seen += 1
            if seen % CHUNK_HOSTS == 0:
                yield
            if host in members:
                continue
            trusted = allow.admits(host)
            info = before.get(host)
            if info is None:
                members[host] = MemberInfo(first_seen=now, last_seen=now, trusted=trusted)
                changes.append(MembershipChange(now, model, host, "joined"))
            else:
                if info.missing_since is not None:
                    changes.append(MembershipChange(now, model, host, "joined"))
                members[host] = MemberInfo(first_seen=info.first_seen, last_seen=now, trusted=trusted)
        result[model] = members

    for model, before in current.models.items():
        listed = result.get(model)
        for host, info in before.items():
            seen += 1
            if seen % CHUNK_HOSTS == 0:
                yield
            if listed is not None and host in listed:
                continue
            missing_since = info.missing_since
            if missing_since is None:
                missing_since = now
                changes.append(MembershipChange(now, model, host, "left"))
            if now - missing_since >= grace_s:
                changes.append(MembershipChange(now, model, host, "retired"))
                continue
            kept = info if info.missing_since is not None else replace(info, missing_since=now)
            result.setdefault(model, {})[host] = kept

    return Membership.of(result), changes
