"""The leader's work: discovery, the probe dispatcher (every probe kind, throughput's too) and the
store's upkeep, started when this process leads and stopped, probes first, when it no longer does
(or stops)."""

from __future__ import annotations

import asyncio

from monitor.config import Settings
from monitor.core.clock import Clock
from monitor.parts.discovery_run import DiscoveryRun
from monitor.parts.dispatcher import Dispatcher, SchedulerStats
from monitor.parts.fleet import Fleet
from monitor.parts.jobs import add_interval_job, make_job_scheduler
from monitor.parts.maintenance import add_maintenance_jobs
from monitor.parts.ports import Maintenance
from monitor.parts.target_runner import TargetRunner
from monitor.parts.targets import Target


class Duties:
    def __init__(
        self,
        settings: Settings,
        clock: Clock,
        fleet: Fleet,
        gateway: DiscoveryRun,
        store: Maintenance | None,
        stats: SchedulerStats,
    ) -> None:
        self._settings = settings
        self._clock = clock
        self._fleet = fleet
        self._gateway = gateway
        self._store = store
        self._stats = stats
        self._dispatcher: Dispatcher[Target] | None = None
        self._jobs = make_job_scheduler(stats)
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def running(self) -> bool:
        return self._dispatcher is not None

    def start(self, runner: TargetRunner) -> None:
        """Start probing every member, the first discovery (in the background) and the jobs."""
        if self._dispatcher is not None:
            return
        s = self._settings
        dispatcher = self._dispatcher = Dispatcher(
            runner.run, self._fleet.interval_of, limit=s.max_concurrency, jitter=s.jitter, clock=self._clock
        )
        dispatcher.stats = self._stats
        self._tasks.append(asyncio.create_task(dispatcher.run_forever(), name="probe-dispatcher"))
        self._fleet.start_probing(dispatcher)
        # The first discovery runs in the background: restored answers are served meanwhile.
        self._tasks.append(asyncio.create_task(self._gateway.run(), name="first-discovery"))
        self._jobs = make_job_scheduler(self._stats)  # a stopped scheduler is not started again
        add_interval_job(self._jobs, self._gateway.run, s.discovery_interval, "discovery")
        if self._store is not None:
            add_maintenance_jobs(self._jobs, self._store, s, self._clock)
        self._jobs.start()

    async def stop(self) -> None:
        """Stop the jobs and every probe (those in flight are cancelled): no request after this."""
        if self._jobs.running:
            self._jobs.shutdown(wait=False)
        dispatcher, self._dispatcher = self._dispatcher, None
        if dispatcher is not None:
            await dispatcher.close()
            self._fleet.stop_probing()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
