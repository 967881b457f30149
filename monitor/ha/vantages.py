"""Other vantages' answers, and what they see of the hosts this one reports.

Another vantage's answers are built as a restart builds this one's: its members, recent results and
best hosts read from the database (`restore`), replayed into fresh health states, its host facts
(identity fingerprints judged again, paths, throughput) taken in, ranked, rendered into a snapshot,
with the maintenance windows drained and the certificates shown as in this one's. A build costs a restore, so
each snapshot is kept `ttl_s` seconds and concurrent requests share one build. The local vantage's
answers are never built here: they are the publisher's, prebuilt per snapshot.

Every `refresh_s` the other vantages with fresh results (newer than `fresh_s`) are built again, and
the hosts they see down go to the publisher (`Elsewhere`): `/v1/hosts` and the metrics tell a host
down from every vantage from one down from some only (a regional problem).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from monitor.config import Settings
from monitor.core.certs import HostCert
from monitor.core.clock import Clock
from monitor.core.health import HealthPolicy
from monitor.core.host_view import Elsewhere
from monitor.core.keys import HostKey
from monitor.core.results import Evidence, HostState, Outcome
from monitor.core.snapshot import DiscoveryStatus, ServedBy, Snapshot
from monitor.core.steps import Steps
from monitor.logging import get_logger
from monitor.parts.best_hosts import BestHosts, ranking_policy
from monitor.parts.fleet import Fleet
from monitor.parts.identities import Identities
from monitor.parts.ports import VantageReads
from monitor.parts.publisher import Publisher
from monitor.parts.recorder import Recorder
from monitor.parts.restore import Saved, read_saved, rebuild
from monitor.parts.targets import Targets
from monitor.parts.windows import MaintenanceWindows
from monitor.slices import run_in_slices
from monitor.store import FactRows, StoreError, VantageInfo, check_vantage

log = get_logger("monitor.vantages")

TTL_S = 5.0
REFRESH_S = 15.0
FRESH_S = 600.0  # a vantage whose newest result is older than this has stopped: it sees nothing


class UnknownVantage(LookupError):
    """No monitor of that vantage ever wrote a result here."""


class _Of:
    """The store's restore reads, of one vantage (what `restore` takes)."""

    def __init__(self, store: VantageReads, vantage: str) -> None:
        self._store = store
        self._vantage = vantage

    async def load_members(self) -> dict[str, set[str]]:
        return await self._store.load_members(self._vantage)

    async def load_recent_evidence(
        self, since: float, per_host_limit: int = 200
    ) -> list[tuple[HostKey, Evidence]]:
        return await self._store.load_recent_evidence(since, per_host_limit, self._vantage)

    async def load_best(self) -> dict[str, str | None]:
        return await self._store.load_best(self._vantage)


class _NoGateway:
    """Another vantage's discovery is not known here."""

    status = DiscoveryStatus()
    key_outcome: Outcome | None = None


@dataclass(frozen=True, slots=True)
class _Built:
    snapshot: Snapshot
    at: float  # the clock's monotonic seconds


class Vantages:
    def __init__(
        self,
        store: VantageReads,
        settings: Settings,
        policy: HealthPolicy,
        clock: Clock,
        served_by: Callable[[], ServedBy],
        *,
        ttl_s: float = TTL_S,
        windows: MaintenanceWindows | None = None,
        certs: Mapping[str, HostCert] | None = None,
    ) -> None:
        self._store = store
        self._certs = certs  # certificates are per host, whatever the vantage
        self._settings = settings
        self._policy = policy
        self._clock = clock
        self._served_by = served_by
        self._ttl_s = ttl_s
        self._windows = windows  # the maintenance windows drain every vantage's answers alike
        self._built: dict[str, _Built] = {}
        self._building: dict[str, asyncio.Future[Snapshot]] = {}

    @property
    def local(self) -> str:
        return self._served_by().vantage

    async def list(self) -> list[VantageInfo]:
        """Every vantage with results, this one included (even before its first result)."""
        listed = await self._store.vantages()
        if all(v.name != self.local for v in listed):
            listed = sorted([*listed, VantageInfo(self.local, None)], key=lambda v: v.name)
        return listed

    async def snapshot(self, vantage: str) -> Snapshot:
        """`vantage`'s answers (ValueError: not a vantage name; UnknownVantage; StoreError)."""
        check_vantage(vantage)
        built = self._built.get(vantage)
        if built is not None and self._clock.monotonic() - built.at < self._ttl_s:
            return built.snapshot
        if vantage not in {v.name for v in await self._store.vantages()}:
            raise UnknownVantage(vantage)
        pending = self._building.get(vantage)
        if pending is None:
            pending = self._building[vantage] = asyncio.ensure_future(self._build(vantage))
            pending.add_done_callback(lambda _: self._building.pop(vantage, None))
        return await asyncio.shield(pending)

    async def _build(self, vantage: str) -> Snapshot:
        now = self._clock.time()
        saved = await read_saved(_Of(self._store, vantage), self._policy, now)
        facts = await self._store.load_facts(vantage)
        # The replay and the ranking take a while at thousands of hosts: in steps on the loop, on
        # parts made for this build alone, so that probes and answers go on between them.
        snapshot = await run_in_slices(self._render(vantage, saved, facts, now))
        self._built[vantage] = _Built(snapshot, self._clock.monotonic())
        return snapshot

    def _render(self, vantage: str, saved: Saved, facts: FactRows, now: float) -> Steps[Snapshot]:
        settings = self._settings
        fleet = Fleet(settings, Targets(settings, self._clock), quiet=True)  # no dispatcher: no probe
        best = BestHosts(ranking_policy(settings))
        yield from rebuild(saved, fleet, best, self._policy, now)
        identities = Identities(fleet, settings.identity_tolerance, settings.identity_reference)
        recorder = Recorder(fleet, self._policy, None, identities=identities)
        for fact in facts.facts:
            recorder.take_fact(fact)
        yield None
        publisher = Publisher(
            fleet,
            best,
            _NoGateway(),
            self._clock,
            throughput=recorder.throughput,
            windows=self._windows,
            identities=identities.verdicts,
            certs=self._certs,
            paths=recorder.paths,
        )
        publisher.served_by = self._served_by()
        publisher.vantage = vantage
        publisher.set_elsewhere(Elsewhere(local=vantage))
        yield from publisher.publish(force=True)
        return publisher.snapshot

    async def elsewhere(self) -> Elsewhere:
        """What the other vantages with fresh results see down now."""
        now = self._clock.time()
        fresh = [
            v.name
            for v in await self._store.vantages()
            if v.name != self.local and v.last_result_at is not None and now - v.last_result_at < FRESH_S
        ]
        down: dict[HostKey, list[str]] = {}
        for vantage in fresh:
            snap = await self.snapshot(vantage)
            for model, view in snap.models.items():
                if view.probed_as != model:
                    continue  # an alias: its hosts are its base id's
                for h in view.hosts:
                    if h.state is HostState.DOWN:
                        down.setdefault(HostKey(model, h.url), []).append(vantage)
        found = {k: tuple(sorted(v)) for k, v in down.items()}
        return Elsewhere(self.local, found, 1 + len(fresh), tuple(sorted(fresh)))

    async def run_forever(
        self,
        publisher: Publisher,
        *,
        refresh_s: float = REFRESH_S,
        also: Callable[[Elsewhere, float], None] | None = None,
    ) -> None:
        """Keep the publisher's view of the other vantages fresh (and `also`'s: the notifier's)."""
        while True:
            try:
                elsewhere = await self.elsewhere()
                publisher.set_elsewhere(elsewhere)
                if also is not None:
                    also(elsewhere, self._clock.time())
            except (StoreError, UnknownVantage) as error:
                log.warning("could not read the other vantages' results", error=str(error))
            await self._clock.sleep(refresh_s)
