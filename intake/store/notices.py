"""The stored state of notifications: notices, their steps, who was mailed, and the daemon's due jobs.

A notice (an incident or a maintenance window) is told to contacts in steps:
the first post, updates, a reminder, its start and end, its resolution or
cancellation. Each step is a row; a step with no `sent` time is a draft,
mailed only when published. `NoticeRecipient` records, per step, which
contact was mailed and the outbox message that carries it, so counts and
threading come from the database. `ScheduledJob` is the one table of work
that falls due at a time (a reminder, a maintenance starting), claimed once
across several daemons.
"""
from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from intake.store.models import Base, UTCDateTime, utcnow

__all__ = ["Notice", "NoticeCase", "NoticeNote", "NoticeOptOut", "NoticeRecipient", "NoticeStep", "ScheduledJob"]


class Notice(Base):
    """An incident or a maintenance window, as contacts and the status page are told of it."""

    __tablename__ = "notices"
    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))  # incident | maintenance
    title: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    # incident: open → resolved; maintenance: scheduled → in progress → completed; either: cancelled.
    status: Mapped[str] = mapped_column(String(20), index=True)
    # Scope: account names (empty: every account), narrowed to areas of responsibility (empty: all).
    accounts: Mapped[list[str]] = mapped_column(JSON, default=list)
    areas: Mapped[list[str]] = mapped_column(JSON, default=list)
    starts: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    ends: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # The iCalendar SEQUENCE of a maintenance window: raised by every change of it, cancellation included.
    sequence: Mapped[int] = mapped_column(Integer, default=0)
    origin: Mapped[str] = mapped_column(String(40), default="staff")  # staff | early warning
    created: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    published: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)  # None: a draft
    closed: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    modified: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    steps: Mapped[list[NoticeStep]] = relationship(back_populates="notice", order_by="NoticeStep.id")
    notes: Mapped[list[NoticeNote]] = relationship(order_by="NoticeNote.id")
    cases: Mapped[list[NoticeCase]] = relationship(order_by="NoticeCase.case_number")


class NoticeStep(Base):
    """One thing told about a notice: posted, update, reminder, started, completed, resolved, cancelled."""

    __tablename__ = "notice_steps"
    id: Mapped[int] = mapped_column(primary_key=True)
    notice_id: Mapped[int] = mapped_column(ForeignKey("notices.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    body: Mapped[str] = mapped_column(Text)
    created: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)  # None: a draft, not yet mailed or shown
    recipients: Mapped[int] = mapped_column(Integer, default=0)  # how many contacts it was mailed to
    # A maintenance update may move the window: the new start and end, applied when the step is sent.
    starts: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    ends: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    notice: Mapped[Notice] = relationship(back_populates="steps")


class NoticeRecipient(Base):
    """A contact mailed one step of a notice, and the outbox message that carries it."""

    __tablename__ = "notice_recipients"
    step_id: Mapped[int] = mapped_column(ForeignKey("notice_steps.id"), primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"), primary_key=True)
    message_id: Mapped[str] = mapped_column(String(998))


class NoticeCase(Base):
    """A case linked to an incident: an outage case filed while it was open, or a reply to its mail."""

    __tablename__ = "notice_cases"
    notice_id: Mapped[int] = mapped_column(ForeignKey("notices.id"), primary_key=True)
    case_number: Mapped[int] = mapped_column(ForeignKey("cases.number"), primary_key=True)
    linked: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class NoticeNote(Base):
    """A contact's reply to a maintenance notice, kept on the notice."""

    __tablename__ = "notice_notes"
    id: Mapped[int] = mapped_column(primary_key=True)
    notice_id: Mapped[int] = mapped_column(ForeignKey("notices.id"), index=True)
    author: Mapped[str] = mapped_column(String(320))
    body: Mapped[str] = mapped_column(Text)
    created: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    inbound_message_id: Mapped[int | None] = mapped_column(ForeignKey("inbound_messages.id"))


class NoticeOptOut(Base):
    """A contact who unsubscribed from maintenance mail (incident mail is never unsubscribed from)."""

    __tablename__ = "notice_opt_outs"
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"), primary_key=True)
    created: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class ScheduledJob(Base):
    """Work due at a time: claimed by one daemon (FOR UPDATE SKIP LOCKED on PostgreSQL), done once."""

    __tablename__ = "scheduled_jobs"
    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))
    due: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)
    notice_id: Mapped[int | None] = mapped_column(ForeignKey("notices.id"))
    done: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, index=True)
    result: Mapped[str | None] = mapped_column(Text)
    created: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
