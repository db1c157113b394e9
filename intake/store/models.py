"""The stored state: SQLAlchemy 2 typed models.

`InboundMessage` is also the work queue: a row is written (with its raw bytes
exactly as received, `InboundRaw`) before anything else happens to a message,
and its `outcome` stays empty until the one transaction that decides and acts
on it commits.
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
    select,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, column_property, mapped_column, relationship, validates

from routing.states import CaseStatus, HeldStatus, OutboxStatus, QuarantineStatus

__all__ = ["Account", "Attachment", "Base", "Case", "CaseStatus", "Comment", "Contact", "DaemonHeartbeat",
           "HeldMessage", "ImapState", "InboundMessage", "InboundRaw", "OutboundMessage", "QuarantinedMessage",
           "UTCDateTime", "utcnow"]


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Aware UTC datetimes on every backend (SQLite keeps no time zone)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given where an aware one is required")
        return value.astimezone(dt.UTC).replace(tzinfo=None)

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        return None if value is None else value.replace(tzinfo=dt.UTC)


class Base(DeclarativeBase):
    # Constraints are named as PostgreSQL named them before intake had migrations
    # (and indexes as SQLAlchemy did), so the migrations can refer to them by name
    # and a database made by the migrations matches one made before them.
    metadata = MetaData(naming_convention={
        "pk": "%(table_name)s_pkey",
        "uq": "%(table_name)s_%(column_0_N_name)s_key",
        "fk": "%(table_name)s_%(column_0_N_name)s_fkey",
        "ix": "ix_%(column_0_label)s",
    })


account_contacts = Table(
    "account_contacts",
    Base.metadata,
    Column("account_id", ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True),
    # Indexed on its own as well: the primary key answers an account's contacts, this a contact's accounts.
    Column("contact_id", ForeignKey("contacts.id", ondelete="CASCADE"), primary_key=True, index=True),
)


class Account(Base):
    """A customer: a school district."""

    __tablename__ = "accounts"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    contacts: Mapped[list[Contact]] = relationship(secondary=account_contacts, back_populates="accounts",
                                                   order_by="Contact.last_name")


class Contact(Base):
    __tablename__ = "contacts"
    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    first_name: Mapped[str] = mapped_column(String(100), default="")
    last_name: Mapped[str] = mapped_column(String(100), default="")
    title: Mapped[str] = mapped_column(String(200), default="")
    primary_phone: Mapped[str] = mapped_column(String(50), default="")
    secondary_phone: Mapped[str] = mapped_column(String(50), default="")
    contact_type: Mapped[str] = mapped_column(String(20))
    areas: Mapped[list[str]] = mapped_column(JSON, default=list)
    schema_bootcamp: Mapped[dt.date | None] = mapped_column(Date)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Bounces of our mail to this address; past the configured count the
    # contact is not mailed again until staff clear it.
    bounces: Mapped[int] = mapped_column(Integer, default=0)
    bouncing: Mapped[bool] = mapped_column(Boolean, default=False)
    last_bounce: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    created: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    modified: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    accounts: Mapped[list[Account]] = relationship(secondary=account_contacts, back_populates="contacts",
                                                   order_by="Account.name")

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip() or self.email


class Case(Base):
    """A typed support case. Its number is its primary key."""

    __tablename__ = "cases"
    number: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"))
    submitted_by_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"))
    case_type: Mapped[str] = mapped_column(String(40))
    priority: Mapped[str] = mapped_column(String(10))
    subject: Mapped[str] = mapped_column(String(500))
    description: Mapped[str] = mapped_column(Text)
    # The type's own fields, keyed by the label as the seed writes it; values are
    # JSON (dates as ISO strings, multi-choice as lists). The text as written is
    # kept beside them.
    fields: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    fields_as_written: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    module: Mapped[str | None] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(30), default=CaseStatus.NEW.value)
    department: Mapped[str] = mapped_column(String(100))
    billable: Mapped[bool] = mapped_column(Boolean, default=False)
    resolution: Mapped[str | None] = mapped_column(Text)
    resolved: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    closed: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    approved_by: Mapped[str | None] = mapped_column(String(320))
    approved: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # A late reply to a closed case makes a new case that follows the old one.
    follows_case: Mapped[int | None] = mapped_column(ForeignKey("cases.number"))
    created: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    modified: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    account: Mapped[Account] = relationship()
    contact: Mapped[Contact] = relationship(foreign_keys=[contact_id])
    submitted_by: Mapped[Contact] = relationship(foreign_keys=[submitted_by_id])
    attachments: Mapped[list[Attachment]] = relationship(back_populates="case", order_by="Attachment.id")
    inbound_messages: Mapped[list[InboundMessage]] = relationship(back_populates="case", order_by="InboundMessage.id")
    outbound_messages: Mapped[list[OutboundMessage]] = relationship(back_populates="case",
                                                                    order_by="OutboundMessage.id")
    comments: Mapped[list[Comment]] = relationship(back_populates="case", order_by="Comment.id")


class Comment(Base):
    """A message on a case's thread: a contact's reply by email, or a staff note or answer."""

    __tablename__ = "comments"
    id: Mapped[int] = mapped_column(primary_key=True)
    case_number: Mapped[int] = mapped_column(ForeignKey("cases.number"))
    author: Mapped[str] = mapped_column(String(320))  # an email address
    body: Mapped[str] = mapped_column(Text)  # the visible text; the full original stays on the inbound message
    public: Mapped[bool] = mapped_column(Boolean, default=True)
    created: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    inbound_message_id: Mapped[int | None] = mapped_column(ForeignKey("inbound_messages.id"))
    case: Mapped[Case] = relationship(back_populates="comments")
    attachments: Mapped[list[Attachment]] = relationship(order_by="Attachment.id")


class Attachment(Base):
    __tablename__ = "attachments"
    id: Mapped[int] = mapped_column(primary_key=True)
    case_number: Mapped[int] = mapped_column(ForeignKey("cases.number"))
    inbound_message_id: Mapped[int | None] = mapped_column(ForeignKey("inbound_messages.id"))
    comment_id: Mapped[int | None] = mapped_column(ForeignKey("comments.id"))
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(255))  # as the mail (or staff's file name) said
    # What the bytes are by their signature (None: no signature known, as for plain text), and whether
    # that contradicts content_type; `intake show` shows a mismatch.
    sniffed_type: Mapped[str | None] = mapped_column(String(255))
    type_mismatch: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    content: Mapped[bytes] = mapped_column(LargeBinary)
    purged: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)  # `content` emptied by `[retention]`
    case: Mapped[Case] = relationship(back_populates="attachments")


class InboundRaw(Base):
    """The bytes of an inbound message exactly as received: written once with it, never changed but purged.

    In a table of their own because SQLite writes a whole row again when any
    column of it changes: in `inbound_messages`, recording a message's outcome
    copied its bytes twice in memory (68 MB for a 34 MB message) and once more
    to disk.
    """

    __tablename__ = "inbound_raw"
    inbound_message_id: Mapped[int] = mapped_column(ForeignKey("inbound_messages.id"), primary_key=True)
    raw: Mapped[bytes] = mapped_column(LargeBinary)


class InboundMessage(Base):
    """A message exactly as received, and what became of it."""

    __tablename__ = "inbound_messages"
    __table_args__ = (UniqueConstraint("dedupe_key", name="uq_inbound_dedupe_key"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    # Message-ID when the message has one, else a hash of the raw bytes: a
    # redelivered message collides here instead of making a second case.
    dedupe_key: Mapped[str] = mapped_column(String(1000))
    message_id: Mapped[str | None] = mapped_column(String(998))
    sender: Mapped[str | None] = mapped_column(String(320), index=True)
    # The SMTP/LMTP envelope sender (MAIL FROM): "" for the null sender <>, with which
    # bounces and auto-replies arrive and which is never answered; None when the
    # message came another way (IMAP, a file).
    envelope_sender: Mapped[str | None] = mapped_column(String(320))
    subject: Mapped[str] = mapped_column(String(1000), default="")
    source: Mapped[str] = mapped_column(String(200))
    # Read from `InboundRaw` as if it were a column; written there by `intake.store.database.store_raw`
    # (or as `InboundMessage(as_received=InboundRaw(raw=...))`).
    raw: Mapped[bytes] = column_property(select(InboundRaw.raw).where(InboundRaw.inbound_message_id == id)
                                         .correlate_except(InboundRaw).scalar_subquery())
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    received: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    processed: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    outcome: Mapped[str | None] = mapped_column(String(30), index=True)
    reasons: Mapped[list[str]] = mapped_column(JSON, default=list)
    error: Mapped[str | None] = mapped_column(Text)
    case_number: Mapped[int | None] = mapped_column(ForeignKey("cases.number"))
    # When `[retention]` emptied its raw bytes (its case closed long ago); the record and its reasons stay.
    purged: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    case: Mapped[Case | None] = relationship(back_populates="inbound_messages")
    as_received: Mapped[InboundRaw] = relationship(lazy="raise")  # `raw` reads it without loading this

    @validates("raw")
    def _raw_is_read_only(self, _key: str, _value: bytes) -> bytes:
        raise AttributeError("InboundMessage.raw is read from inbound_raw: give as_received=InboundRaw(raw=...)")


class OutboundMessage(Base):
    """The outbox: a rendered message written in the transaction that caused it."""

    __tablename__ = "outbound_messages"
    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[str] = mapped_column(String(998), unique=True)
    in_reply_to: Mapped[str | None] = mapped_column(String(998))
    kind: Mapped[str] = mapped_column(String(40))
    recipients: Mapped[list[str]] = mapped_column(JSON)
    subject: Mapped[str] = mapped_column(String(1000))
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    # queued → sent; or retrying (temporary failure, next_attempt set) → sent | failed;
    # failed (permanent 5xx or gave up); suppressed (recipient bouncing, or the reply cap).
    status: Mapped[str] = mapped_column(String(20), default=OutboxStatus.QUEUED.value, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    created: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    case_number: Mapped[int | None] = mapped_column(ForeignKey("cases.number"))
    inbound_message_id: Mapped[int | None] = mapped_column(ForeignKey("inbound_messages.id"))
    purged: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)  # `raw` emptied by `[retention]`
    case: Mapped[Case | None] = relationship(back_populates="outbound_messages")


class QuarantinedMessage(Base):
    """A message that claims to be from a contact (or staff) and failed sender authentication.

    It waits for a person: `intake quarantine release` processes it as if it had
    passed, `drop` marks it dropped. Nothing is deleted; the raw message stays in
    `inbound_messages`, whose outcome is `quarantined` until it is released.
    """

    __tablename__ = "quarantine"
    id: Mapped[int] = mapped_column(primary_key=True)
    inbound_message_id: Mapped[int] = mapped_column(ForeignKey("inbound_messages.id"), unique=True)
    claimed_sender: Mapped[str] = mapped_column(String(320))
    reason: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), default=QuarantineStatus.HELD.value, index=True)
    created: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    decided: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    decided_by: Mapped[str | None] = mapped_column(String(320))
    inbound_message: Mapped[InboundMessage] = relationship()


class HeldMessage(Base):
    """A message over the rate of new cases: it waits for time, not for a person.

    When `until` passes, the worker's next pass releases it and processes it
    again, in the order messages arrived; `intake held release` does so at once.
    """

    __tablename__ = "held_messages"
    id: Mapped[int] = mapped_column(primary_key=True)
    inbound_message_id: Mapped[int] = mapped_column(ForeignKey("inbound_messages.id"), unique=True)
    sender: Mapped[str] = mapped_column(String(320), index=True)
    reason: Mapped[str] = mapped_column(Text)
    until: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)
    status: Mapped[str] = mapped_column(String(20), default=HeldStatus.HELD.value, index=True)
    created: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    released: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    released_by: Mapped[str | None] = mapped_column(String(320))  # None: its time came
    inbound_message: Mapped[InboundMessage] = relationship()


class DaemonHeartbeat(Base):
    """One running `intake serve`: where, since when, and when it was last seen alive (`intake health`)."""

    __tablename__ = "daemons"
    name: Mapped[str] = mapped_column(String(300), primary_key=True)  # host:pid:start
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    started: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    last_seen: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)


class ImapState(Base):
    """How far the IMAP poller got in one folder of one configured mailbox.

    UIDs are only meaningful under the folder's UIDVALIDITY, so both are kept:
    a restart continues after `last_uid`, and a changed UIDVALIDITY makes the
    poller look at every unhandled message again. UIDs are unsigned 32-bit
    numbers, hence BigInteger.
    """

    __tablename__ = "imap_state"
    mailbox: Mapped[str] = mapped_column(String(200), primary_key=True)
    folder: Mapped[str] = mapped_column(String(500), primary_key=True)
    uid_validity: Mapped[int] = mapped_column(BigInteger)
    last_uid: Mapped[int] = mapped_column(BigInteger, default=0)
    updated: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


# --- indexes of the hot path --------------------------------------------------------
# Every look-up a message's processing makes is by index (tests/test_indexes.py
# checks each query plan on both engines): the References of a reply, a case's
# thread, the reply-cap and case-rate counts, and the outbox's due rows.
Index("ix_inbound_messages_message_id", InboundMessage.message_id)
Index("ix_inbound_messages_case_number", InboundMessage.case_number)
Index("ix_outbound_messages_case_number", OutboundMessage.case_number)
Index("ix_outbound_messages_inbound_message_id", OutboundMessage.inbound_message_id)
Index("ix_outbound_messages_status_next_attempt", OutboundMessage.status, OutboundMessage.next_attempt)
Index("ix_cases_submitted_by_id_created", Case.submitted_by_id, Case.created)
Index("ix_cases_account_id_created", Case.account_id, Case.created)
Index("ix_comments_case_number", Comment.case_number)
Index("ix_attachments_case_number", Attachment.case_number)
# The notifications' tables (intake/store/notices.py) share this metadata, so the migrations see them.
from intake.store import notices as _notices  # noqa: E402, F401
