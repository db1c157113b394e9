"""The daemon's scheduled work: one table of due jobs, each run once, in order, whenever it falls due.

A maintenance window puts three jobs in the table when it is published: the
reminder (`[notifications] reminder_hours` before it starts), its start and
its end. `run_due` claims the jobs due by `now` (FOR UPDATE SKIP LOCKED on
PostgreSQL, so each runs once across several daemons), oldest first, each in
its own transaction, so a daemon that was down catches up in order when it
starts again; a reminder whose window has already begun is skipped, not sent
late. The same pass closes cases resolved more than
`close_resolved_after_days` ago, mailing no one. `now` is always passed in,
so tests drive the clock.
"""
from __future__ import annotations

import datetime as dt
import enum
import logging
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from intake.config import Config
from intake.logs import logfmt
from intake.store.database import Store
from intake.store.models import Case
from intake.store.notices import Notice, ScheduledJob
from routing.states import CaseStatus

__all__ = ["JobKind", "PassResult", "cancel_jobs", "close_resolved_cases", "next_job_due", "run_due",
           "schedule_maintenance"]

log = logging.getLogger("intake.notify.schedule")


class JobKind(enum.StrEnum):
    MAINTENANCE_REMINDER = "maintenance reminder"
    MAINTENANCE_START = "maintenance start"
    MAINTENANCE_END = "maintenance end"


@dataclass(frozen=True)
class PassResult:
    jobs: int  # how many jobs ran
    closed_cases: int
    changed: bool  # something the status page shows changed


def schedule_maintenance(session: Session, notice: Notice, config: Config, now: dt.datetime) -> None:
    """The reminder, start and end of a published maintenance window."""
    assert notice.starts is not None and notice.ends is not None
    reminder = notice.starts - dt.timedelta(hours=config.notifications.reminder_hours)
    jobs = [(JobKind.MAINTENANCE_START, notice.starts), (JobKind.MAINTENANCE_END, notice.ends)]
    if config.notifications.reminder_hours and reminder > now:
        jobs.insert(0, (JobKind.MAINTENANCE_REMINDER, reminder))
    for kind, due in jobs:
        session.add(ScheduledJob(kind=kind.value, due=due, notice_id=notice.id))


def cancel_jobs(session: Session, notice: Notice, now: dt.datetime, why: str) -> None:
    session.execute(update(ScheduledJob).where(ScheduledJob.notice_id == notice.id, ScheduledJob.done.is_(None))
                    .values(done=now, result=f"not run: {why}"))


def next_job_due(store: Store) -> dt.datetime | None:
    with store.session() as session:
        return session.scalars(select(ScheduledJob.due).where(ScheduledJob.done.is_(None))
                               .order_by(ScheduledJob.due).limit(1)).first()


def run_due(store: Store, config: Config, now: dt.datetime) -> PassResult:
    """Run every job due by `now`, oldest first, then close the resolved cases whose time has come."""
    ran = 0
    try:
        while _run_one(store, config, now) is not None:
            ran += 1
    except OperationalError as exc:  # another daemon holds the database for a long job: the next pass goes on
        log.warning(logfmt(event="jobs_left_for_next_pass", error=exc.orig or exc))
    with store.session() as session, session.begin():
        closed = close_resolved_cases(session, config.notifications.close_resolved_after_days, now)
    return PassResult(ran, closed, changed=ran > 0)


def _run_one(store: Store, config: Config, now: dt.datetime) -> str | None:
    from intake.notify.notices import run_job  # the notices module queues the mail a job causes

    claimed: int | None = None
    try:
        with store.session() as session, session.begin():
            job = _claim(session, now)
            if job is None:
                return None
            claimed = job.id
            job.result = run_job(session, job, config, now)
            log.info(logfmt(event="job_done", job=job.id, kind=job.kind, notice=job.notice_id, result=job.result))
            return job.result
    except OperationalError:
        raise
    except Exception as exc:  # a bug: record it on the job, which is not tried again, and go on with the rest
        assert claimed is not None
        return _mark_failed(store, claimed, now, exc)


def _mark_failed(store: Store, job_id: int, now: dt.datetime, exc: Exception) -> str:
    result = f"failed: {type(exc).__name__}: {exc}"
    log.error(logfmt(event="job_failed", job=job_id, error=result), exc_info=exc)
    with store.session() as session, session.begin():
        session.execute(update(ScheduledJob).where(ScheduledJob.id == job_id).values(done=now, result=result))
    return result


def _claim(session: Session, now: dt.datetime) -> ScheduledJob | None:
    """The oldest due job, marked done in this transaction: a conditional UPDATE, the transaction's first
    statement, so a second daemon waits for it (SQLite) or skips the locked row (PostgreSQL) and never
    runs it again. Should the job fail, the rollback hands it back."""
    due = (select(ScheduledJob.id).where(ScheduledJob.done.is_(None), ScheduledJob.due <= now)
           .order_by(ScheduledJob.due, ScheduledJob.id).limit(1))
    if session.get_bind().dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)
    claimed = session.execute(update(ScheduledJob).where(ScheduledJob.id == due.scalar_subquery(),
                                                         ScheduledJob.done.is_(None))
                              .values(done=now).returning(ScheduledJob.id)).scalar()
    return session.get(ScheduledJob, claimed) if claimed is not None else None


def close_resolved_cases(session: Session, after_days: int, now: dt.datetime) -> int:
    """Close, without mail, every case resolved more than `after_days` ago; how many."""
    cutoff = now - dt.timedelta(days=after_days)
    cases = session.scalars(select(Case).where(Case.status == CaseStatus.RESOLVED.value, Case.resolved.is_not(None),
                                               Case.resolved <= cutoff)).all()
    for case in cases:
        case.status = CaseStatus.CLOSED.value
        case.closed = now
    return len(cases)


def job_notice(session: Session, job: ScheduledJob) -> Notice | None:
    return session.get(Notice, job.notice_id) if job.notice_id is not None else None
