"""The running monitor: wires the parts together and owns their life cycle.

Each part has one job (ARCHITECTURE.md draws the flow): the `Fleet` holds members, health and
probe targets; `DiscoveryRun` polls the gateway; `Probing` and `ProbeRecorder` run probes and
take in their results; `BestHosts` ranks and announces a new best host, which `Persistence`
writes and the log reports; the `Publisher` renders the snapshot that the API and /metrics read
(through `MonitorView`); `restore` reads a restart's memory back. Every read of the time goes
through one injected `Clock`.
"""

from __future__ import annotations

import asyncio
import functools

import aiohttp

from monitor import __version__
from monitor.best_hosts import BestHosts, log_best_change, ranking_policy
from monitor.clock import SYSTEM_CLOCK, Clock
from monitor.config import Settings
from monitor.discovery_run import DiscoveryRun
from monitor.fleet import Fleet
from monitor.http import make_session
from monitor.maintenance import add_maintenance_jobs
from monitor.persistence import Persistence
from monitor.ports import HistoryReader, ServiceStore
from monitor.probe_once import probe_once
from monitor.probes import Prober
from monitor.probing import Probing
from monitor.publisher import Publisher
from monitor.readiness import Readiness, readiness
from monitor.recorder import ProbeRecorder, health_policy
from monitor.restore import restore
from monitor.scheduler import ProbeDispatcher, SchedulerStats, add_interval_job, make_job_scheduler
from monitor.secret import Secret
from monitor.snapshot import DiscoveryStatus, Snapshot
from monitor.status.incidents import IncidentLog
from monitor.targets import HOST_WIDE, Target, Targets, probe_kinds
from monitor.view import Counters

__all__ = ["HOST_WIDE", "Monitor", "Readiness", "Target", "probe_kinds"]

_STOP_WRITES_S = 10.0  # how long stop waits for pending database writes


class Monitor:
    """The service: `prepare` (restore; answers ready), `run` (discovery, probes, jobs), `stop`.
    Satisfies `monitor.view.MonitorView` for the API and /metrics."""

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
        self.best_hosts = BestHosts(ranking_policy(settings))
        self.fleet.on_sync(self.best_hosts.retain)
        self.best_hosts.subscribe(log_best_change)
        self.persistence = Persistence(store) if store is not None else None
        if self.persistence is not None:
            self.best_hosts.subscribe(self.persistence.best_changed)
        self.recorder = ProbeRecorder(self.fleet, self.health_policy, store)
        self.probe_counts = self.recorder.counts
        # State and best-host changes of the last days, for the status page.
        self.incidents = IncidentLog()
        self.recorder.on_state_change(self.incidents.note_state)
        self.best_hosts.subscribe(self.incidents.note_best)
        self.gateway = DiscoveryRun(
            settings, self.fleet, self.persistence, lambda: self.publisher.publish_in_steps(force=True)
        )
        self.publisher = Publisher(self.fleet, self.best_hosts, self.gateway, clock)
        self.sched_stats = SchedulerStats()
        self.counters = Counters(
            probes=self.probe_counts,
            scheduler=self.sched_stats,
            targets=self.targets.__len__,
            store=lambda: None if store is None else store.stats,
            started_at=clock.time(),
            version=__version__,
        )
        self._session: aiohttp.ClientSession | None = None
        self._probing: Probing | None = None
        self._dispatcher: ProbeDispatcher[Target] | None = None
        self._jobs = make_job_scheduler(self.sched_stats)
        self._tasks: list[asyncio.Task[None]] = []  # loops, cancelled at stop

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
        prober = Prober(self._session, s.api_key or Secret(""), s.probe_timeout, allow=s.allowed_hosts)
        self._probing = Probing(prober, self.fleet, self.recorder, self.targets, s.confirm_delay)
        if self.store is not None:
            await restore(self.store, self.fleet, self.best_hosts, self.health_policy, self.clock.time())
        self.publisher.publish(force=True)

    async def run(self) -> None:
        """Start discovery, probing and the periodic jobs (after `prepare`)."""
        assert self._probing is not None, "prepare() first"
        s = self.settings
        self._dispatcher = ProbeDispatcher(
            self._probing.run,
            self.fleet.interval_of,
            limit=s.max_concurrency,
            jitter=s.jitter,
            clock=self.clock,
        )
        self._dispatcher.stats = self.sched_stats
        self._tasks.append(asyncio.create_task(self._dispatcher.run_forever(), name="probe-dispatcher"))
        self._tasks.append(asyncio.create_task(self.publisher.run_forever(), name="snapshot-publisher"))
        self.fleet.start_probing(self._dispatcher)
        # The first discovery runs in the background: restored answers are served meanwhile.
        self._tasks.append(asyncio.create_task(self.gateway.run(), name="first-discovery"))
        add_interval_job(self._jobs, self.gateway.run, s.discovery_interval, "discovery")
        if self.store is not None:
            add_maintenance_jobs(self._jobs, self.store, s, self.clock)
        self._jobs.start()

    async def stop(self) -> None:
        """Stop probing, publish the final state, and let pending database writes finish."""
        if self._jobs.running:
            self._jobs.shutdown(wait=False)
        if self._dispatcher is not None:
            await self._dispatcher.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        self.publisher.publish(force=True)
        if self.persistence is not None:
            await self.persistence.drain(_STOP_WRITES_S)
        if self._session is not None:
            await self._session.close()

    def readiness(self) -> Readiness:
        return readiness(
            has_host_list=self.gateway.discovered_once or bool(self.fleet.membership.models),
            key_set=self.settings.api_key is not None,
            key_outcome=self.gateway.key_outcome,
            store=None if self.store is None else self.store.stats,
        )

    async def probe_once(self) -> None:
        """One discovery and one probe of every target, then a fresh snapshot (for `probe-once`)."""
        assert self._probing is not None, "prepare() first"
        publish = functools.partial(self.publisher.publish, force=True)
        await probe_once(self.settings, self.clock, self.gateway, self.fleet, self._probing, publish)
