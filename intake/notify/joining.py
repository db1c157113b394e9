"""Outage cases join the open incident: a new case is linked to it, and its acknowledgement names it.

A case joins when it is a reply to the incident's mail, or when an
operator's rule matches it (`[notifications] join_case_types`, by default
Report an Outage; `join_subject_words`; `join_accounts`) and an incident in
the scope of its account is open; with several open, the most recently
posted. Pure matching (`joins`), then the one write (`link_case`).
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from intake.config import Config
from intake.notify.present import moment
from intake.notify.settings import NotificationSettings
from intake.notify.states import NoticeKind, NoticeStatus
from intake.store.models import Case
from intake.store.notices import Notice, NoticeCase

__all__ = ["IncidentJoined", "join_open_incident", "joins"]


@dataclass(frozen=True)
class IncidentJoined:
    """The incident a new case joined, as its acknowledgement shows it."""

    id: int
    title: str
    posted: str
    latest_update: str  # "2:25 PM UPDATE: ..." or the incident's own text


def joins(settings: NotificationSettings, case_type: str, subject: str, account: str) -> bool:
    """Does a rule make this case join an open incident?"""
    folded_subject = subject.casefold()
    return (case_type.casefold() in {t.casefold() for t in settings.join_case_types}
            or any(word.casefold() in folded_subject for word in settings.join_subject_words)
            or account.casefold() in {a.casefold() for a in settings.join_accounts})


def _covers(notice: Notice, account: str) -> bool:
    return not notice.accounts or account.casefold() in {a.casefold() for a in notice.accounts}


def _open_incident_for(session: Session, account: str) -> Notice | None:
    return next((n for n in session.scalars(_OPEN_INCIDENTS) if _covers(n, account)), None)


# Built once: every new case that a rule makes join asks it.
_OPEN_INCIDENTS = (select(Notice).where(Notice.kind == NoticeKind.INCIDENT.value,
                                        Notice.status == NoticeStatus.OPEN.value, Notice.published.is_not(None))
                   .order_by(Notice.published.desc(), Notice.id.desc()))


def join_open_incident(session: Session, case: Case, config: Config, now: dt.datetime,
                       replied_to: int | None = None) -> IncidentJoined | None:
    """Link a new case to the incident it belongs to, if any; what its acknowledgement says of it."""
    notice = session.get(Notice, replied_to) if replied_to is not None else None
    if notice is None or notice.kind != NoticeKind.INCIDENT:
        if not joins(config.notifications, case.case_type, case.subject, case.account.name):
            return None
        notice = _open_incident_for(session, case.account.name)
    if notice is None:
        return None
    session.add(NoticeCase(notice_id=notice.id, case_number=case.number, linked=now))
    session.flush()
    return _joined(notice, config)


def _joined(notice: Notice, config: Config) -> IncidentJoined:
    from intake.notify.present import card_of
    card = card_of(notice, config.timezone)
    latest = f"{card.updates[0].label}: {card.updates[0].body}" if card.updates else notice.body
    return IncidentJoined(notice.id, notice.title, moment(notice.published, config.timezone), latest)
