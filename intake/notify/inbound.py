"""What mail about notices changes: run by the act stage's handlers, inside their transaction.

A new case may join an open incident and may set off the early warning;
an unsubscribe request stops maintenance mail; a reply to maintenance mail
becomes a note on the notice.
"""
from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from intake.config import Config
from intake.notify.early_warning import early_warning
from intake.notify.joining import IncidentJoined, join_open_incident
from intake.store.models import Case, Contact
from intake.store.notices import NoticeNote, NoticeOptOut

__all__ = ["add_note", "case_joins_notices", "unsubscribe"]


def case_joins_notices(session: Session, case: Case, replied_to: int | None, config: Config,
                       now: dt.datetime) -> tuple[IncidentJoined | None, tuple[str, ...]]:
    """Link a new case to its open incident, or draft one when outages come from several districts."""
    joined = join_open_incident(session, case, config, now, replied_to)
    if joined is not None:
        return joined, (f"linked to incident #{joined.id} {joined.title!r}",)
    drafted = early_warning(session, case, config, now)
    if drafted is not None:
        return None, (f"early warning: outage cases from several districts; incident #{drafted} drafted, "
                      f"staff told",)
    return None, ()


def unsubscribe(session: Session, contact_id: int, now: dt.datetime) -> str:
    contact = session.get(Contact, contact_id)
    if contact is None:
        return f"contact {contact_id} no longer exists; nothing to unsubscribe"
    if session.get(NoticeOptOut, contact_id) is None:
        session.add(NoticeOptOut(contact_id=contact_id, created=now))
    return f"{contact.email} unsubscribed from maintenance mail"


def add_note(session: Session, notice_id: int, author: str, body: str, inbound_id: int, now: dt.datetime) -> None:
    session.add(NoticeNote(notice_id=notice_id, author=author, body=body, created=now, inbound_message_id=inbound_id))
