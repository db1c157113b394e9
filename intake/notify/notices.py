"""Changing notices, and the mail each change causes: every step is queued in the outbox of its transaction.

Used by `intake notify` and by the daemon's scheduled jobs. A step made as a
draft is stored and mailed to no one until `publish`; a published step is
mailed once to every contact in scope (`intake.notify.scope`), one message per
recipient, rendered once (`intake.notify.mail`), and who got which message is
recorded per step.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from intake.act.cases import CaseActionError, resolve
from intake.config import Config
from intake.mailout.outbox import Prepared, enqueue_prepared
from intake.notify.mail import Personal, StepMessage, message_id_for, personalise, render_step
from intake.notify.present import card_of
from intake.notify.schedule import JobKind, cancel_jobs, schedule_maintenance
from intake.notify.scope import AREAS, Audience, ContactFacts, Scope, contacts_in_scope, load_contact_facts
from intake.notify.states import CLOSING_STEPS, OPEN_STATUSES, STATUS_AFTER, NoticeKind, NoticeStatus, StepKind
from intake.store.models import Account, Case
from intake.store.notices import Notice, NoticeRecipient, NoticeStep, ScheduledJob
from routing.states import CaseStatus, Reply

__all__ = ["NoticeError", "StepDone", "add_step", "create_notice", "publish", "reach", "resolve_linked",
           "run_job", "step_message_for"]


class NoticeError(ValueError):
    """A notice change that cannot be made as asked; the message says why."""


@dataclass(frozen=True)
class StepDone:
    notice_id: int
    step_id: int
    kind: str
    recipients: int  # mailed, or for a draft: would be mailed on publishing
    draft: bool


def _scope(notice: Notice) -> Scope:
    return Scope(tuple(notice.accounts or ()), tuple(notice.areas or ()))


def _audience(notice: Notice, config: Config) -> Audience:
    return Audience(config.notifications.include_read_only, notice.kind == NoticeKind.MAINTENANCE)


def reach(session: Session, notice: Notice, config: Config,
          facts: Sequence[ContactFacts] | None = None) -> list[ContactFacts]:
    """The contacts a step of the notice is mailed to now."""
    return contacts_in_scope(facts if facts is not None else load_contact_facts(session), _scope(notice),
                             _audience(notice, config))


# --- making notices and steps ---------------------------------------------------------------


def create_notice(session: Session, config: Config, *, kind: NoticeKind, title: str, body: str,
                  accounts: Sequence[str] = (), areas: Sequence[str] = (), starts: dt.datetime | None = None,
                  ends: dt.datetime | None = None, draft: bool, now: dt.datetime, origin: str = "staff") -> StepDone:
    if not title.strip() or not body.strip():
        raise NoticeError("a notice needs a title and a body")
    if kind == NoticeKind.MAINTENANCE:
        if starts is None or ends is None:
            raise NoticeError("maintenance needs --starts and --ends")
        if ends <= starts:
            raise NoticeError("maintenance must end after it starts")
    notice = Notice(kind=kind.value, title=title.strip(), body=body.strip(),
                    status=STATUS_AFTER[(kind, StepKind.POSTED)].value, accounts=_known_accounts(session, accounts),
                    areas=_known_areas(areas), starts=starts, ends=ends, origin=origin, created=now)
    session.add(notice)
    session.flush()
    return _new_step(session, config, notice, StepKind.POSTED, notice.body, draft=draft, now=now)


def add_step(session: Session, config: Config, notice: Notice, kind: StepKind, body: str, *, draft: bool,
             now: dt.datetime, starts: dt.datetime | None = None, ends: dt.datetime | None = None) -> StepDone:
    """An update (for maintenance, perhaps moving the window), resolution or cancellation of an open notice."""
    if not body.strip():
        raise NoticeError(f"the {kind.value} needs a --body")
    if NoticeStatus(notice.status) not in OPEN_STATUSES or _pending_closing_step(notice):
        raise NoticeError(f"notice #{notice.id} is {notice.status}; it takes no more steps")
    if starts is not None or ends is not None:
        _check_move(notice, kind, starts or notice.starts, ends or notice.ends)
    if notice.published is None and kind == StepKind.CANCELLED and not draft:
        return _discard_draft(session, notice, body.strip(), now)
    if notice.published is None and not draft:
        raise NoticeError(f"notice #{notice.id} is a draft: publish it first (intake notify publish {notice.id}), "
                          f"or add this step with --draft")
    return _new_step(session, config, notice, kind, body.strip(), draft=draft, now=now, starts=starts, ends=ends)


def _check_move(notice: Notice, kind: StepKind, starts: dt.datetime | None, ends: dt.datetime | None) -> None:
    if notice.kind != NoticeKind.MAINTENANCE or kind != StepKind.UPDATE:
        raise NoticeError("only an update of a maintenance window can move it (--starts, --ends)")
    if starts is None or ends is None or ends <= starts:
        raise NoticeError("maintenance must end after it starts")


def _discard_draft(session: Session, notice: Notice, body: str, now: dt.datetime) -> StepDone:
    """A draft no contact has seen is cancelled without mail."""
    notice.status, notice.closed = NoticeStatus.CANCELLED.value, now
    step = NoticeStep(notice_id=notice.id, kind=StepKind.CANCELLED.value, body=body, created=now, sent=now)
    notice.steps.append(step)
    session.flush()
    return StepDone(notice.id, step.id, step.kind, 0, draft=False)


def _pending_closing_step(notice: Notice) -> bool:
    return any(s.sent is None and StepKind(s.kind) in CLOSING_STEPS for s in notice.steps)


def _new_step(session: Session, config: Config, notice: Notice, kind: StepKind, body: str, *, draft: bool,
              now: dt.datetime, starts: dt.datetime | None = None, ends: dt.datetime | None = None) -> StepDone:
    step = NoticeStep(notice_id=notice.id, kind=kind.value, body=body, created=now, starts=starts, ends=ends)
    notice.steps.append(step)
    session.flush()
    if draft:
        return StepDone(notice.id, step.id, kind.value, len(reach(session, notice, config)), draft=True)
    return StepDone(notice.id, step.id, kind.value, send_step(session, config, notice, step, now), draft=False)


def publish(session: Session, config: Config, notice: Notice, now: dt.datetime) -> list[StepDone]:
    """Send every draft step of the notice, oldest first."""
    drafts = [s for s in notice.steps if s.sent is None]
    if NoticeStatus(notice.status) not in OPEN_STATUSES:
        raise NoticeError(f"notice #{notice.id} is {notice.status}; there is nothing to publish")
    if not drafts:
        raise NoticeError(f"notice #{notice.id} has no draft to publish")
    return [StepDone(notice.id, s.id, s.kind, send_step(session, config, notice, s, now), draft=False)
            for s in drafts]


# --- sending a step ------------------------------------------------------------------------------


def send_step(session: Session, config: Config, notice: Notice, step: NoticeStep, now: dt.datetime) -> int:
    """Apply the step to the notice, and queue its mail to every contact in scope; how many."""
    _apply(session, config, notice, step, now)
    step.sent = now
    recipients = reach(session, notice, config)
    message = step_message_for(notice, step, config, now)
    prepared, links = [], []
    for contact in recipients:
        message_id, raw = personalise(message, Personal(contact.id, contact.name, contact.email), config)
        root = (None if step.id == message.root_step_id
                else message_id_for(config, notice.id, message.root_step_id, contact.id))
        prepared.append(Prepared(message_id, root, contact.email, message.subject, raw))
        links.append({"step_id": step.id, "contact_id": contact.id, "message_id": message_id})
    enqueue_prepared(session, Reply.NOTICE, prepared)
    if links:
        session.execute(insert(NoticeRecipient), links)
    step.recipients = len(recipients)
    return len(recipients)


def step_message_for(notice: Notice, step: NoticeStep, config: Config, now: dt.datetime) -> StepMessage:
    root = next((s.id for s in notice.steps if s.kind == StepKind.POSTED), step.id)
    return render_step(card_of(notice, config.timezone, preview=step), step.id, step.kind, root, notice.sequence,
                       config, now)


def _apply(session: Session, config: Config, notice: Notice, step: NoticeStep, now: dt.datetime) -> None:
    kind = StepKind(step.kind)
    status = STATUS_AFTER.get((NoticeKind(notice.kind), kind))
    if status is not None:
        notice.status = status.value
    if kind == StepKind.POSTED:
        notice.published = now
        if notice.kind == NoticeKind.MAINTENANCE:
            session.flush()
            schedule_maintenance(session, notice, config, now)
    if kind in CLOSING_STEPS:
        notice.closed = now
        cancel_jobs(session, notice, now, f"the notice was {notice.status}")
    if step.starts is not None or step.ends is not None:
        _move(session, config, notice, step, now)
    if kind == StepKind.CANCELLED or (kind == StepKind.UPDATE and notice.kind == NoticeKind.MAINTENANCE):
        notice.sequence += 1  # the calendar entry is replaced, not duplicated


def _move(session: Session, config: Config, notice: Notice, step: NoticeStep, now: dt.datetime) -> None:
    """A maintenance window moved: new times, and its reminder, start and end scheduled again."""
    notice.starts, notice.ends = step.starts or notice.starts, step.ends or notice.ends
    cancel_jobs(session, notice, now, "the window moved")
    session.flush()
    schedule_maintenance(session, notice, config, now)


# --- scheduled jobs -----------------------------------------------------------------------------

_JOB_STEPS = {JobKind.MAINTENANCE_REMINDER: StepKind.REMINDER, JobKind.MAINTENANCE_START: StepKind.STARTED,
              JobKind.MAINTENANCE_END: StepKind.COMPLETED}


def _job_text(kind: StepKind, notice: Notice, config: Config) -> str:
    from intake.notify.present import moment
    zone = config.timezone
    return {StepKind.REMINDER: f"This maintenance starts {moment(notice.starts, zone)} and is planned to end "
                               f"{moment(notice.ends, zone)}.",
            StepKind.STARTED: "This maintenance has started.",
            StepKind.COMPLETED: "This maintenance is complete."}[kind]


def run_job(session: Session, job: ScheduledJob, config: Config, now: dt.datetime) -> str:
    """One due job: a maintenance reminder, start or end, as a mailed step."""
    notice = session.get(Notice, job.notice_id) if job.notice_id is not None else None
    if notice is None or NoticeStatus(notice.status) not in OPEN_STATUSES:
        return "skipped: the notice is closed"
    kind = _JOB_STEPS[JobKind(job.kind)]
    if kind == StepKind.REMINDER and notice.starts is not None and now >= notice.starts:
        return "skipped: the maintenance had already started"
    if kind == StepKind.STARTED and notice.status != NoticeStatus.SCHEDULED:
        return f"skipped: the maintenance is {notice.status}"
    step = NoticeStep(notice_id=notice.id, kind=kind.value, body=_job_text(kind, notice, config), created=now)
    notice.steps.append(step)
    session.flush()
    return f"{kind.value}: mailed {send_step(session, config, notice, step, now)} contacts"


# --- linked cases --------------------------------------------------------------------------------


def resolve_linked(session: Session, notice: Notice, resolution: str, config: Config) -> list[int]:
    """Resolve the cases linked to the notice with the resolution text, each told on its own thread."""
    done = []
    for link in notice.cases:
        case = session.get(Case, link.case_number)
        if case is None or case.status in (CaseStatus.RESOLVED.value, CaseStatus.CLOSED.value):
            continue
        try:
            resolve(session, case, resolution, config)
        except CaseActionError:
            continue
        done.append(case.number)
    return done


# --- checking what staff wrote ---------------------------------------------------------------


def _known_accounts(session: Session, names: Sequence[str]) -> list[str]:
    if not names:
        return []
    known = {name.casefold(): name for name in session.scalars(select(Account.name))}
    missing = [name for name in names if name.casefold() not in known]
    if missing:
        raise NoticeError(f"no account named {', '.join(repr(n) for n in missing)}")
    return sorted({known[name.casefold()] for name in names})


def _known_areas(areas: Sequence[str]) -> list[str]:
    known = {area.casefold(): area for area in AREAS}
    missing = [area for area in areas if area.casefold() not in known]
    if missing:
        raise NoticeError(f"unknown area(s) {', '.join(repr(a) for a in missing)}; the areas are: {', '.join(AREAS)}")
    return sorted({known[area.casefold()] for area in areas})
