"""The fleet: every (model, host) the monitor knows, its health entry, and its probe targets.

A host list from the gateway (or restored from history) goes in through `apply_listing`; the
decision of who joins, leaves and retires is `membership.apply_listing`'s. The fleet keeps one
health entry per member of a base model id (aliases share their base's), the probe targets in step
(`Targets`), the indexes that keep the probe path from walking every host, and which entries
changed since the snapshot was last built.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from monitor.config import Settings
from monitor.core.health import HostHealth, new_host
from monitor.core.keys import HostKey
from monitor.core.membership import Membership, MembershipChange, apply_listing
from monitor.core.steps import Steps, finish, for_each, mapped
from monitor.logging import get_logger
from monitor.parts.targets import Target, Targets, TargetSet, interval_of, probe_kinds
from monitor.probe.discovery import alias_of

log = get_logger("monitor.service")  # the service's parts log under one name

# Members handled per step while walking the fleet: a few milliseconds.
SYNC_STEP = 500


@dataclass(frozen=True, slots=True)
class Changed:
    """What changed since the last `take_changed`: entries to render again, models to rank again,
    and entries that are gone (their rendered views go too)."""

    keys: set[HostKey]  # handed over, not copied: the fleet starts new sets
    models: set[str]
    dropped: set[HostKey]


class Fleet:
    def __init__(self, settings: Settings, targets: Targets, *, quiet: bool = False) -> None:
        self._settings = settings
        self._quiet = quiet  # no log of membership changes (a fleet rebuilt for another vantage)
        self.targets = targets
        self.membership = Membership()
        self.aliases: dict[str, str] = {}  # "-thinking" alias -> base id
        self.health: dict[HostKey, HostHealth] = {}  # never rebound: the Monitor shares it
        self._models_of_host: dict[str, list[str]] = {}
        self._hosts_of_model: dict[str, list[str]] = {}
        self._listed_hosts = 0
        self._dirty: set[HostKey] = set()
        self._dirty_models: set[str] = set()
        self._dropped: set[HostKey] = set()
        self._on_sync: list[Callable[[set[str]], Iterator[None] | None]] = []

    def on_sync(self, listener: Callable[[set[str]], Iterator[None] | None]) -> None:
        """Call `listener(base model ids)` after every change of the members; a listener that
        returns an iterator is run in its steps (the loop gets a turn at each one)."""
        self._on_sync.append(listener)

    def apply_listing(
        self, listing: Mapping[str, Iterable[str]], now: float, *, grace_s: float | None = None
    ) -> Steps[list[MembershipChange]]:
        """Apply a host list (model -> hosts), in steps of a few milliseconds; returns who joined,
        left or retired (logged here). A host missing from it retires after `grace_s` (default:
        the `retire_after` setting). Applies must not overlap: each diffs against the membership
        the one before left."""
        grace = self._settings.retire_after if grace_s is None else grace_s
        membership, changes = yield from apply_listing(
            self.membership, _lists(listing), self._settings.allowed_hosts, now, grace
        )
        self.membership = membership
        # Aliases stay in the membership (so they are recorded and restored after a restart) but
        # get no health entries or probes of their own: their base id is probed once for both.
        ids = list(membership.models)
        aliases = {m: base for m in ids if (base := alias_of(m, ids)) != m}
        # Nearly every poll returns the same list: only a change needs the hosts walked again
        # (at thousands of hosts that walk is a noticeable stall of the event loop).
        if changes or aliases != self.aliases or not self.health:
            self.aliases = aliases
            yield from self._walk()
        if changes and not self._quiet:
            yield from _log_changes(changes)
        return changes

    def start_probing(self, targets: TargetSet) -> None:
        """From now on every member's targets live in `targets` (the running dispatcher)."""
        self.targets.attach(targets)
        finish(self._walk())  # targets for the members restored from history

    def stop_probing(self) -> None:
        """No more targets anywhere (the dispatcher was closed: this process stopped leading)."""
        self.targets.detach()

    def _walk(self) -> Steps[None]:
        """Create health entries and probe targets for members; drop those of retired hosts.

        In steps of `SYNC_STEP` members (a few milliseconds each): between two steps probes keep
        recording into the entries, the publisher keeps reading them. So entries are added
        before the indexes name them, and the indexes are built aside and swapped in whole: a
        reader finds either the old or the new ones, and tolerates an entry gone meanwhile."""
        membership, aliases = self.membership, self.aliases
        listed: set[str] = set()
        for hosts in membership.models.values():
            listed.update(hosts)
        members = ((model, host, info) for model, host, info in membership.pairs() if model not in aliases)
        wanted: dict[HostKey, bool] = dict(
            (yield from mapped(members, lambda m: (HostKey(m[0], m[1]), m[2].trusted), SYNC_STEP))
        )

        def drop_retired(key: HostKey) -> None:
            if key not in wanted:
                self.health.pop(key, None)
                self._dropped.add(key)
                self._dirty_models.add(key[0])
                self.targets.set_kinds(key, (), None, len(self.health))

        def add_entry(member: tuple[HostKey, bool]) -> None:
            key, trusted = member
            current = self.health.get(key)
            if current is None or current.trusted != trusted:
                self.health[key] = new_host(key[0], key[1], trusted)
                self._dirty.add(key)

        yield from for_each(list(self.health), drop_retired, SYNC_STEP)
        yield from for_each(wanted.items(), add_entry, SYNC_STEP)
        # Only now that every member has its entry: the first probes' ramp is sized by their number.
        count = len(self.health)

        def set_targets(member: tuple[HostKey, bool]) -> None:
            key, trusted = member
            kinds = probe_kinds(key[0], self._settings) if trusted else ()
            self.targets.set_kinds(key, kinds, self.health.get(key), count)

        yield from for_each(wanted.items(), set_targets, SYNC_STEP)
        models = self.models()
        for listener in self._on_sync:
            steps = listener(models)
            if steps is not None:  # a listener with much to do does it in steps too
                yield from steps
        # Indexes so that the probe path never walks every host.
        models_of_host: dict[str, list[str]] = {}
        hosts_of_model: dict[str, list[str]] = {}
        trusted_hosts: set[str] = set()

        def index(member: tuple[HostKey, bool]) -> None:
            (model, host), trusted = member
            models_of_host.setdefault(host, []).append(model)
            hosts_of_model.setdefault(model, []).append(host)
            if trusted:
                trusted_hosts.add(host)

        yield from for_each(wanted.items(), index, SYNC_STEP)
        self._models_of_host, self._hosts_of_model = models_of_host, hosts_of_model
        self._listed_hosts = len(listed)
        yield from self.targets.set_auth_hosts(trusted_hosts, count, SYNC_STEP)

    @property
    def host_count(self) -> int:
        """Distinct hosts among the members, aliases' too (as of the last walk)."""
        return self._listed_hosts

    def models(self) -> set[str]:
        """Base model ids: the ones that are probed and ranked."""
        return set(self.membership.models) - set(self.aliases)

    def models_of(self, host: str) -> Sequence[str]:
        return self._models_of_host.get(host, ())

    def hosts_of(self, model: str) -> Sequence[str]:
        return self._hosts_of_model.get(model, ())

    def any_model_of(self, host: str) -> str:
        models = self._models_of_host.get(host)
        return models[0] if models else ""

    def interval_of(self, target: Target) -> float:
        model, host, kind = target
        return interval_of(kind, self.health.get(HostKey(model, host)), self._settings)

    def update(self, key: HostKey, h: HostHealth) -> None:
        """A member's new health (its entry must exist), to be rendered at the next snapshot."""
        self.health[key] = h
        self._dirty.add(key)

    def touch(self, key: HostKey) -> None:
        """Render `key` again at the next snapshot (something shown of it changed, not its health)."""
        self._dirty.add(key)

    def take_changed(self) -> Changed:
        """What changed since the last call (the snapshot builder takes it all at once)."""
        changed = Changed(self._dirty, self._dirty_models, self._dropped)
        self._dirty, self._dirty_models, self._dropped = set(), set(), set()
        return changed

    def give_back(self, keys: Iterable[HostKey], models: Iterable[str]) -> None:
        """Work a builder took but did not finish: it is done by the next build."""
        self._dirty.update(keys)
        self._dirty_models.update(models)

    @property
    def has_changes(self) -> bool:
        return bool(self._dirty or self._dirty_models or self._dropped)


def _lists(listing: Mapping[str, Iterable[str]]) -> dict[str, Sequence[str]]:
    return {m: hosts if isinstance(hosts, (list, tuple)) else list(hosts) for m, hosts in listing.items()}


def _log_changes(changes: list[MembershipChange]) -> Steps[None]:
    """One line for a listing's changes, counted in steps (a listing may bring thousands)."""
    by_event: Counter[str] = Counter()

    def count(change: MembershipChange) -> None:
        by_event[change.event] += 1

    yield from for_each(changes, count, SYNC_STEP)
    log.info(
        "discovery list changed",
        joined=by_event.get("joined", 0),
        left=by_event.get("left", 0),
        retired=by_event.get("retired", 0),
        # The first 50 only: a listing of thousands of new servers is not one log line of them all.
        hosts=sorted({f"{c.model} {c.host} {c.event}" for c in changes[:50]}),
    )
