"""The periodic jobs (discovery, roll-up, retention, snapshot refresh) on APScheduler 3, their errors,
misfires and overlaps counted in the scheduler's stats.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from apscheduler.events import (
    EVENT_JOB_ERROR,
    EVENT_JOB_MAX_INSTANCES,
    EVENT_JOB_MISSED,
    JobExecutionEvent,
)
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from monitor.logging import get_logger
from monitor.parts.dispatcher import SchedulerStats

log = get_logger("monitor.parts.jobs")


def make_job_scheduler(stats: SchedulerStats) -> AsyncIOScheduler:
    """An AsyncIOScheduler whose job errors, misfires and overlaps are counted in `stats`."""
    scheduler = AsyncIOScheduler(
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 30},
        timezone="UTC",
    )

    def listener(event: JobExecutionEvent) -> None:
        if event.code == EVENT_JOB_ERROR:
            stats.job_errors += 1
            log.error("job failed", job=event.job_id, error=repr(event.exception))
        elif event.code == EVENT_JOB_MISSED:
            stats.job_missed += 1
            log.warning("job run missed", job=event.job_id)
        elif event.code == EVENT_JOB_MAX_INSTANCES:
            stats.job_max_instances += 1
            log.warning("job still running, run skipped", job=event.job_id)

    scheduler.add_listener(listener, EVENT_JOB_ERROR | EVENT_JOB_MISSED | EVENT_JOB_MAX_INSTANCES)
    return scheduler


def add_interval_job(
    scheduler: AsyncIOScheduler, func: Callable[[], Awaitable[Any]], seconds: float, job_id: str
) -> None:

    async def job() -> None:
        try:
            await func()
        except asyncio.CancelledError:
            # The process is stopping with the run under way (a discovery of a huge listing takes
            # seconds): abandoned, not failed. APScheduler would log it as an error with a traceback.
            log.debug("job cancelled at stop", job=job_id)

    scheduler.add_job(job, IntervalTrigger(seconds=seconds), id=job_id, name=job_id, replace_existing=True)
