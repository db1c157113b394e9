"""The daemon's scheduled-work task: due jobs, the closing of resolved cases, and the status page.

Runs beside processing and delivery in `intake serve`: each pass runs what
fell due (`intake.notify.schedule.run_due`), wakes delivery when it queued
mail, and brings the status page up to date when `[notifications]
status_page_dir` is set (publishing it only when it changed). It sleeps until
the next job is due or the sweep interval passes, whichever is sooner.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable

from intake.config import Config
from intake.logs import logfmt
from intake.notify.schedule import next_job_due, run_due
from intake.notify.status_page import regenerate
from intake.store.database import Store

__all__ = ["run_scheduled_work"]

log = logging.getLogger("intake.notify.daemon_work")
MIN_WAIT_SECONDS = 0.5


async def run_scheduled_work(store: Store, config: Config, stopping: asyncio.Event, wake_delivery: Callable[[], None],
                             clock: Callable[[], dt.datetime], sweep_seconds: float) -> None:
    """Until `stopping` is set: run due jobs, keep the status page current, sleep until the next is due."""
    while not stopping.is_set():
        try:
            done = await asyncio.to_thread(run_due, store, config, clock())
            if done.jobs:
                wake_delivery()
            if config.notifications.status_page_dir is not None:
                await asyncio.to_thread(regenerate, store, config)
            due = await asyncio.to_thread(next_job_due, store)
        except Exception as exc:  # the database is away; keep going, try again later
            log.error(logfmt(event="scheduled_work_error", error=f"{type(exc).__name__}: {exc}"), exc_info=exc)
            due = None
        pause = sweep_seconds if due is None else min(sweep_seconds, (due - clock()).total_seconds())
        try:
            await asyncio.wait_for(stopping.wait(), timeout=max(MIN_WAIT_SECONDS, pause))
        except TimeoutError:
            continue
