"""The running monitor: wires the parts together and owns their life cycle.

Each part has one job (ARCHITECTURE.md draws the flow): the `Fleet` holds members, health and
probe targets; `DiscoveryRun` polls the gateway; `TargetRunner` and `Recorder` run probes and
take in their results; `BestHosts` ranks and announces a new best host, which `Persistence`
writes and the log reports; the `Publisher` renders the snapshot that the API and /metrics read
(through `Readout`); `restore` reads a restart's memory back. Every read of the time goes
through one injected `Clock`.
"""

from __future__ import annotations

import asyncio
import math

import aiohttp

from monitor import __version__
from monitor.config import Settings
from monitor.core.clock import SYSTEM_CLOCK, Clock
from monitor.core.keys import HostKey
from monitor.core.secret import Secret
from monitor.core.snapshot import DiscoveryStatus, Snapshot
from monitor.core.steps import finish
from monitor.ha.duties import Duties
from monitor.ha.election import Election, Role, asyncpg_dsn
from monitor.ha.follower import Follower, Mark
from monitor.ha.roles import Roles
from monitor.ha.vantages import UnknownVantage, Vantages
from monitor.logging import get_logger
from monitor.parts.best_hosts import BestHosts, log_best_change, ranking_policy
from monitor.parts.budgets import SloWindowReader, StoredBudgets
from monitor.parts.certs import Certificates, CertStore
from monitor.parts.discovery_run import DiscoveryRun
from monitor.parts.dispatcher import SchedulerStats
from monitor.parts.fleet import Fleet
from monitor.parts.identities import Identities
from monitor.parts.notifier import NotificationLog, Notifier
from monitor.parts.persistence import Persistence
from monitor.parts.ports import HistoryReader, ServiceStore
from monitor.parts.probe_once import probe_once
from monitor.parts.publisher import Publisher
from monitor.parts.readiness import Readiness, readiness
from monitor.parts.recorder import STATE_LOG_WINDOW_S, Recorder, health_policy, slo_objectives
from monitor.parts.restore import restore
from monitor.parts.target_runner import TargetRunner
from monitor.parts.targets import HOST_WIDE, Target, Targets, probe_kinds
from monitor.parts.windows import MaintenanceWindows
from monitor.probe.http import make_session
from monitor.probe.prober import Prober
from monitor.slices import run_in_slices
from monitor.store import StoreError, VantageInfo
from monitor.web.readout import Counters
from monitor.web.status.incidents import IncidentLog, IncidentStore, keep_incidents, save_incidents

__all__ = ["HOST_WIDE", "Monitor", "Readiness", "Target", "probe_kinds"]

# Every stop is clean within 5 s, the store's flush of queued results included, which
# comes after: the monitor's part (probes, final snapshot, pending writes) takes at most this long.
_STOP_S = 3.0
# Of which the final snapshot at most: a full rebuild of a huge fleet takes seconds.
_STOP_PUBLISH_S = 1.0
_STOP_WRITES_MIN_S = 0.5  # pending database writes get at least this long, whatever came before
log = get_logger("monitor.service")


class Monitor:
    """The service: `prepare` (restore; answers ready), `run` (discovery, probes, jobs), `stop`.
    Satisfies `monitor.web.readout.Readout` for the API and /metrics."""

    def __init__(
        self, settings: Settings, store: ServiceStore | None = None, clock: Clock = SYSTEM_CLOCK
    ) -> None:
        self.settings = settings
        self.store = store
        self.clock = clock
        self.history: HistoryReader | None = store
        self.health_policy = health_policy(settings)
        self.targets = Targets(settings, clock)
        self.fleet = Fleet(settings, self.targets)
        self.health = self.fleet.health  # the same dict, for readers of the whole fleet's health
        self.best_hosts = BestHosts(
            ranking_policy(settings), keyed=lambda model: len(probe_kinds(model, settings)) > 1
        )
        self.fleet.on_sync(self.best_hosts.retain)
        self.best_hosts.subscribe(log_best_change)
        self.persistence = Persistence(store) if store is not None else None
        if self.persistence is not None:
            self.best_hosts.subscribe(self.persistence.best_changed)
        self.identities = Identities(self.fleet, settings.identity_tolerance, settings.identity_reference)
        self.recorder = Recorder(
            self.fleet,
            self.health_policy,
            store,
            objectives=slo_objectives(settings),
            identities=self.identities,
            facts=store,
        )
        self.fleet.on_sync(self.recorder.retain_kept)
        self.fleet.on_sync(self.identities.retain)
        self.probe_counts = self.recorder.counts
        # State and best-host changes of the last days, for the status page.
        self.incidents = IncidentLog()
        self.recorder.on_state_change(self.incidents.note_state)
        self.best_hosts.subscribe(self.incidents.note_best)
        # Certificates of HTTPS hosts: a change is an incident; pins are shared through the store.
        self.certs = Certificates(
            settings.pin_certificates, store if isinstance(store, CertStore) else None, clock
        )
        self.certs.subscribe(self.incidents.note_cert)
        self.certs.on_update(self._render_hosts)
        self.gateway = DiscoveryRun(
            settings,
            self.fleet,
            self.persistence,
            self._publish_on_the_loop,
            key_watch=self.recorder.key_watch,
        )
        self.maintenance = MaintenanceWindows(store, clock)
        # Notifications (with notify_urls): decided on every change, sent by one leader only,
        # nothing for a host in maintenance.
        self.notifier = Notifier.from_settings(
            settings,
            clock,
            self._leading,
            self.maintenance.in_maintenance,
            record=store if isinstance(store, NotificationLog) else None,
            vantages=store is not None,
        )
        if self.notifier is not None:
            self.recorder.on_state_change(self.notifier.note_state)
            self.certs.subscribe(self.notifier.note_cert)
        self.publisher = Publisher(
            self.fleet,
            self.best_hosts,
            self.gateway,
            clock,
            throughput=self.recorder.throughput,
            identities=self.identities.verdicts,
            windows=self.maintenance,
            certs=self.certs.records,
            paths=self.recorder.paths,
        )
        self.sched_stats = SchedulerStats()
        self.budgets = (
            StoredBudgets(store, self.recorder.objectives, clock)
            if isinstance(store, SloWindowReader)
            else None
        )
        self.counters = Counters(
            probes=self.probe_counts,
            scheduler=self.sched_stats,
            targets=self.targets.__len__,
            store=lambda: None if store is None else store.stats,
            started_at=clock.time(),
            version=__version__,
            slo_good=self.recorder.slo_good,
            slo_total=self.recorder.slo_total,
            objectives=self.recorder.objectives,
            notifications=self.notifier.counts if self.notifier is not None else {},
            slo_window=lambda: None if self.budgets is None else self.budgets.counts,
            key_blocked=lambda: self.recorder.key_watch.blocked,
        )
        self._session: aiohttp.ClientSession | None = None
        self._runner: TargetRunner | None = None
        self._tasks: list[asyncio.Task[None]] = []  # loops, cancelled at stop
        # Monitors sharing a PostgreSQL database elect a leader per vantage; any other store
        # (SQLite) or none: this process is the only one, and leads.
        vantage = settings.vantage if store is None else store.vantage
        elected = store is not None and asyncpg_dsn(store.engine.url) is not None
        self.follower = (
            Follower(store.engine, vantage, self.fleet, self.recorder, self.best_hosts, clock)
            if store is not None and elected
            else None
        )
        self._mark: Mark | None = None
        duties = Duties(settings, clock, self.fleet, self.gateway, store, self.sched_stats)
        self.roles = Roles(
            vantage,
            duties,
            self.follower,
            self.persistence,
            self.publisher,
            self._prepared,
            elected=elected,
        )
        self.election = (
            Election(store.engine.url, vantage, clock=clock, on_change=self.roles.on_change)
            if store is not None and elected
            else None
        )
        self.vantages = (
            None
            if store is None
            else Vantages(
                store,
                settings,
                self.health_policy,
                clock,
                lambda: self.roles.served_by,
                windows=self.maintenance,
                certs=self.certs.records,
            )
        )

    @property
    def snapshot(self) -> Snapshot:
        return self.publisher.snapshot

    @property
    def discovery(self) -> DiscoveryStatus:
        return self.gateway.status

    async def prepare(self) -> None:
        """Open the HTTP session and restore state from history: answers are ready after this."""
        s = self.settings
        self._session = make_session(
            ca_bundle=s.ca_bundle,
            limit=s.max_concurrency,
            user_agent=f"libertai-monitor/{__version__}",
            keepalive_s=s.probe_interval * 2.5,
        )
        self.gateway.bind(self._session)
        # Without a key only health probes are scheduled (see `probe_kinds`); an empty key is never sent.
        prober = Prober(
            self._session,
            s.api_key or Secret(""),
            s.probe_timeout,
            allow=s.allowed_hosts,
            throughput_tokens=s.throughput_tokens,
            certs=self.certs,
        )
        self._runner = TargetRunner(
            prober,
            self.fleet,
            self.recorder,
            self.targets,
            s.confirm_delay,
            retry_after=s.completion_interval,
            clock=self.clock,
        )
        if self.follower is not None:
            try:
                self._mark = await self.follower.mark()  # before the restore: nothing falls between
            except StoreError:
                self._mark = None  # the follower finds its own when the database answers
        await self.maintenance.refresh()
        await self.certs.refresh()
        if self.store is not None:
            await restore(self.store, self.fleet, self.best_hosts, self.health_policy, self.clock.time())
            await self._restore_facts(self.store)
        finish(self.publisher.publish(force=True))

    async def _restore_facts(self, store: ServiceStore) -> None:
        """This vantage's stored host facts: a restart shows identity, paths and throughput at once,
        not after its rare probes ran again."""
        try:
            rows = await store.load_facts()
        except StoreError as error:
            log.warning("could not read the host facts", error=str(error))
            return
        for fact in rows.facts:
            self.recorder.take_fact(fact)

    def _prepared(self) -> TargetRunner:
        assert self._runner is not None, "prepare() first"
        return self._runner

    async def run(self) -> None:
        """Start the publisher, and discovery, probing and the periodic jobs when this process
        leads (at once without an election); a follower follows until it leads."""
        self._prepared()
        self._tasks.append(asyncio.create_task(self.publisher.run_forever(), name="snapshot-publisher"))
        self._tasks.append(asyncio.create_task(self._summarise_state_log(), name="state-log-summary"))
        self._tasks.append(asyncio.create_task(self.maintenance.run_forever(), name="maintenance-windows"))
        if self.budgets is not None:
            self._tasks.append(asyncio.create_task(self.budgets.run_forever(), name="error-budgets"))
        self._tasks.append(asyncio.create_task(self.certs.run_forever(), name="certificates"))
        if isinstance(self.store, IncidentStore):
            kept = keep_incidents(self.incidents, self.store, self._leading, self.clock)
            self._tasks.append(asyncio.create_task(kept, name="incidents"))
        if self.notifier is not None:
            self.notifier.start(self.gateway)
        if self.vantages is not None:
            also = self.notifier.note_elsewhere if self.notifier is not None else None
            refresh = self.vantages.run_forever(self.publisher, also=also)
            self._tasks.append(asyncio.create_task(refresh, name="vantages"))
        if self.election is None:
            await self.roles.lead()
            return
        await self.roles.follow(self._mark)
        self._tasks.append(asyncio.create_task(self.election.run(), name="election"))

    def _render_hosts(self, hosts: set[str]) -> None:
        """Render the views of `hosts` again (their certificate records changed)."""
        keys = [HostKey(model, host) for host in hosts for model in self.fleet.models_of(host)]
        self.fleet.give_back((k for k in keys if k in self.fleet.health), ())

    def _leading(self) -> bool:
        return self.roles.role is Role.LEADER

    async def _summarise_state_log(self) -> None:
        """A burst of state changes past the log's budget is summed up even if no change follows."""
        while True:
            await self.clock.sleep(STATE_LOG_WINDOW_S)
            self.recorder.summarise_state_log(self.clock.time())

    async def stop(self) -> None:
        """Stop probing (or following), leave the election, publish the final state, and let
        pending database writes finish: within `_STOP_S` in all."""
        started = self.clock.monotonic()
        await self.roles.close()  # probes first: the lock is released after the last one
        if self.notifier is not None:
            await self.notifier.stop()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        self.recorder.summarise_state_log(math.inf)  # the window of what was held back ends here
        await self._final_publish()
        if self.persistence is not None:
            left = _STOP_S - (self.clock.monotonic() - started)
            await self.persistence.drain(max(left, _STOP_WRITES_MIN_S))
        if isinstance(self.store, IncidentStore) and self._leading():
            await save_incidents(self.incidents, self.store, _STOP_WRITES_MIN_S)
        if self._session is not None:
            await self._session.close()

    async def _final_publish(self) -> None:
        """The last results into the snapshot (and a changed best host into the store), in steps
        and for at most `_STOP_PUBLISH_S` on the clock; past that it is left undone, not waited for."""
        publish = asyncio.ensure_future(self._publish_on_the_loop())
        bound = asyncio.ensure_future(self.clock.sleep(_STOP_PUBLISH_S))
        await asyncio.wait((publish, bound), return_when=asyncio.FIRST_COMPLETED)
        finished = publish.done()
        publish.cancel()
        bound.cancel()
        await asyncio.gather(publish, bound, return_exceptions=True)
        if not finished:
            log.warning("final snapshot left undone at stop", seconds=_STOP_PUBLISH_S)

    async def _publish_on_the_loop(self) -> None:
        """Every model ranked again and the snapshot rebuilt, in steps, after any rebuild running."""
        async with self.publisher.building:
            await run_in_slices(self.publisher.publish(force=True), 0.0)

    async def vantage_list(self) -> list[VantageInfo]:
        """Every vantage with results in the database (this one always)."""
        if self.vantages is None:
            return [VantageInfo(self.roles.vantage, None)]
        return await self.vantages.list()

    async def vantage_snapshot(self, vantage: str) -> Snapshot:
        """Another vantage's answers (LookupError: none; ValueError: not a name; StoreError)."""
        if vantage == self.roles.vantage:
            return self.snapshot
        if self.vantages is None:
            raise UnknownVantage(vantage)
        return await self.vantages.snapshot(vantage)

    def readiness(self) -> Readiness:
        return readiness(
            has_host_list=self.gateway.discovered_once or bool(self.fleet.membership.models),
            key_set=self.settings.api_key is not None,
            key_outcome=self.gateway.key_outcome,
            store=None if self.store is None else self.store.stats,
            key_blocked=self.recorder.key_watch.blocked,
        )

    async def probe_once(self) -> None:
        """One discovery and one probe of every target, then a fresh snapshot (for `probe-once`)."""
        assert self._runner is not None, "prepare() first"

        def publish_now() -> None:
            finish(self.publisher.publish(force=True))

        await probe_once(self.settings, self.clock, self.gateway, self.fleet, self._runner, publish_now)
