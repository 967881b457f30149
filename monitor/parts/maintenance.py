"""The store's periodic upkeep: hourly roll-ups and retention, as jobs of the job scheduler.

A job that fails raises: the job scheduler logs it with its reason and counts it in
`libertai_monitor_scheduler_job_errors`, and the next run tries again.
"""

from __future__ import annotations

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from monitor.config import Settings
from monitor.core.clock import Clock
from monitor.parts.jobs import add_interval_job
from monitor.parts.ports import Maintenance

ROLLUP_EVERY_S = 600
RETENTION_EVERY_S = 3600


def add_maintenance_jobs(
    jobs: AsyncIOScheduler, store: Maintenance, settings: Settings, clock: Clock
) -> None:
    async def rollup() -> None:
        await store.rollup(clock.time(), settings.slo_ttft_ms)

    async def retention() -> None:
        await store.apply_retention(clock.time(), settings.raw_retention_days, settings.rollup_retention_days)

    add_interval_job(jobs, rollup, ROLLUP_EVERY_S, "rollup")
    add_interval_job(jobs, retention, RETENTION_EVERY_S, "retention")
