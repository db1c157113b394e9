"""Early warning: outage cases from several districts in a short time, and no incident open.

When Report an Outage cases arrive from `early_warning_accounts` accounts
(default 3) within `early_warning_minutes` (default 15) and no incident is
open (or already drafted by an earlier warning), intake drafts an incident for
those accounts (not sent) and mails the staff addresses the cases and the
command that publishes it. Several cases from one district never trigger it.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from intake.config import Config
from intake.mailout.compose import MailHeaders, render
from intake.mailout.outbox import enqueue
from intake.notify.notices import create_notice
from intake.notify.states import NoticeKind, NoticeStatus
from intake.store.database import plain_connection
from intake.store.locks import lock_for_transaction
from intake.store.models import Case
from intake.store.notices import Notice
from routing.schema import CaseType
from routing.states import Reply

__all__ = ["EARLY_WARNING", "accounts_reporting", "early_warning"]

EARLY_WARNING = "early warning"


def accounts_reporting(cases: Sequence[Case]) -> list[str]:
    """The distinct accounts of the cases, in the order they first reported."""
    seen: dict[str, None] = {}
    for case in sorted(cases, key=lambda c: c.number):
        seen.setdefault(case.account.name, None)
    return list(seen)


def _incident_open_or_drafted(session: Session) -> bool:
    return plain_connection(session).execute(_AN_OPEN_INCIDENT).first() is not None


# Built once: every new outage case asks it.
_AN_OPEN_INCIDENT = select(Notice.id).where(Notice.kind == NoticeKind.INCIDENT.value,
                                            Notice.status == NoticeStatus.OPEN.value).limit(1)


def early_warning(session: Session, case: Case, config: Config, now: dt.datetime) -> int | None:
    """After a new outage case: the id of the incident drafted, or None."""
    settings = config.notifications
    if case.case_type != CaseType.REPORT_AN_OUTAGE.value or not _warning_due(session, config, now):
        return None  # the usual answer, found without waiting for anyone
    # Several workers: the one that drafts decides alone. Another may be drafting the same warning in a
    # transaction not yet committed; once the lock is ours, it has committed, and the draft is seen.
    lock_for_transaction(session, "intake.early_warning")
    recent = _warning_due(session, config, now)
    if not recent:
        return None
    accounts = accounts_reporting(recent)
    title = f"Possible outage: reported by {len(accounts)} districts"
    body = ("We are investigating reports that Campus is inaccessible for several districts. "
            "We will post an update here as soon as we know more.")
    done = create_notice(session, config, kind=NoticeKind.INCIDENT, title=title, body=body, accounts=accounts,
                         draft=True, now=now, origin=EARLY_WARNING)
    _mail_staff(session, config, done.notice_id, title, recent, accounts, settings.early_warning_minutes)
    return done.notice_id


def _warning_due(session: Session, config: Config, now: dt.datetime) -> Sequence[Case]:
    """The recent outage cases, when they come from enough districts and no incident is open or drafted."""
    settings = config.notifications
    if _incident_open_or_drafted(session):
        return ()
    since = now - dt.timedelta(minutes=settings.early_warning_minutes)
    recent = session.scalars(select(Case).where(Case.case_type == CaseType.REPORT_AN_OUTAGE.value,
                                                Case.created >= since)).all()
    return recent if len(accounts_reporting(recent)) >= settings.early_warning_accounts else ()


def _mail_staff(session: Session, config: Config, notice_id: int, title: str, cases: Sequence[Case],
                accounts: Sequence[str], minutes: int) -> None:
    staff = config.conversations.staff_addresses
    if not staff:
        return
    headers = MailHeaders(to=tuple(("", a) for a in staff), subject=f"Early warning: draft incident #{notice_id}",
                          auto_submitted=Reply.NOTICE_EARLY_WARNING.auto_submitted)
    values = {"to_name": "", "notice_id": notice_id, "title": title, "accounts": list(accounts), "minutes": minutes,
              "cases": [{"number": c.number, "account": c.account.name, "subject": c.subject}
                        for c in sorted(cases, key=lambda c: c.number)]}
    enqueue(session, render(Reply.NOTICE_EARLY_WARNING, values, headers, config), Reply.NOTICE_EARLY_WARNING,
            list(staff))
