"""JSON-ready views of the stored state: the shapes ``--json`` prints.

These dictionaries are a public contract: scripts read them. Keys are never
renamed or removed; new keys may be added. Every value is a JSON type:
timestamps are ISO 8601 strings in UTC with an explicit offset and whole
seconds (``2026-11-28T12:00:00+00:00``), dates are ``YYYY-MM-DD``, and a
missing value is ``null``, never an absent key. The builders only read the
models they are given (following their relationships); they never query or
write. Addresses and the In-Reply-To of a message are read from the header
block of its stored raw bytes (headers only; a header that cannot be read
counts as absent).
"""
from __future__ import annotations

import datetime as dt
import re
from email import policy
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from email.utils import getaddresses
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import object_session

from intake.store.models import (
    Attachment,
    Case,
    Comment,
    Contact,
    HeldMessage,
    InboundMessage,
    OutboundMessage,
    QuarantinedMessage,
)

INBOUND = "inbound"
OUTBOUND = "outbound"


def contact_view(contact: Contact) -> dict[str, Any]:
    """A support contact.

    ``{email, first_name, last_name, title, primary_phone, secondary_phone,
    contact_type, areas: [str], schema_bootcamp: "YYYY-MM-DD" | null,
    active: bool, accounts: [account name, in name order], bounces: int,
    bouncing: bool (true: not mailed until cleared)}``
    """
    return {
        "email": contact.email,
        "first_name": contact.first_name,
        "last_name": contact.last_name,
        "title": contact.title,
        "primary_phone": contact.primary_phone,
        "secondary_phone": contact.secondary_phone,
        "contact_type": contact.contact_type,
        "areas": list(contact.areas or []),
        "schema_bootcamp": _date(contact.schema_bootcamp),
        "active": bool(contact.active),
        "accounts": [account.name for account in contact.accounts],
        "bounces": contact.bounces or 0,
        "bouncing": bool(contact.bouncing),
    }


def case_summary(case: Case) -> dict[str, Any]:
    """A case without its long text, attachments or mail.

    ``{number, case_type, priority, status, subject, account: name,
    contact: email, submitted_by: email, department, billable: bool,
    created: ISO timestamp, modified: ISO timestamp, module: str | null,
    fields: {label: value as stored}}``. ``contact`` is whom the case is for;
    ``submitted_by`` is who sent it (the same unless filed on someone's behalf).
    """
    return {
        "number": case.number,
        "case_type": case.case_type,
        "priority": case.priority,
        "status": case.status,
        "subject": case.subject,
        "account": case.account.name,
        "contact": case.contact.email,
        "submitted_by": case.submitted_by.email,
        "department": case.department,
        "billable": bool(case.billable),
        "created": _timestamp(case.created),
        "modified": _timestamp(case.modified),
        "module": case.module,
        "fields": dict(case.fields or {}),
    }


def case_detail(case: Case) -> dict[str, Any]:
    """Everything about a case: `case_summary` plus its text, attachments and mail.

    Adds ``description``, ``fields_as_written: {label: text as written}``,
    ``attachments: [{filename, content_type, sniffed_type, type_mismatch, size, sha256}]`` (``content_type``
    as the mail said, ``sniffed_type`` what the bytes are by their signature or null, ``type_mismatch``
    true when the two disagree) and ``messages``:
    the case's inbound and outbound mail in time order (inbound by
    ``received``, outbound by ``created``), each ``{direction: "inbound" |
    "outbound", message_id, date, from, to: [str], subject, outcome,
    reasons: [str], kind, status, in_reply_to}``. ``from`` is the sender's
    address (inbound: the stored sender; outbound: the From of the message
    sent), ``to`` the addresses it went to (inbound: its To and Cc headers;
    outbound: the recipients), ``in_reply_to`` the Message-ID its
    In-Reply-To names, or null; addresses read from headers are in lower
    case. Keys that do
    not apply to a direction are null (``reasons`` is an empty list
    instead): ``outcome`` and ``reasons`` are inbound-only; ``kind`` and
    ``status`` are outbound-only.

    Also ``comments``: the thread in order, each ``{author (email), body (the
    visible text), public, created, attachments: [as the case's]}``;
    ``linked_cases``: numbers of the case this one follows and of the cases
    that follow it; and ``resolution``, ``resolved``, ``closed``,
    ``approved_by``, ``approved``.
    """
    return {
        **case_summary(case),
        "description": case.description,
        "fields_as_written": dict(case.fields_as_written or {}),
        "attachments": [_attachment(a) for a in case.attachments],
        "messages": case_messages(case),
        "comments": [_comment(c) for c in case.comments],
        "linked_cases": linked_cases(case),
        "resolution": case.resolution,
        "resolved": _timestamp(case.resolved),
        "closed": _timestamp(case.closed),
        "approved_by": case.approved_by,
        "approved": _timestamp(case.approved),
    }


def _comment(comment: Comment) -> dict[str, Any]:
    return {"author": comment.author, "body": comment.body, "public": comment.public,
            "created": _timestamp(comment.created), "attachments": [_attachment(a) for a in comment.attachments]}


def linked_cases(case: Case) -> list[int]:
    session = object_session(case)
    followers = session.scalars(select(Case.number).where(Case.follows_case == case.number)).all() if session else []
    return sorted({*([case.follows_case] if case.follows_case else []), *followers})


def case_messages(case: Case) -> list[dict[str, Any]]:
    """The case's inbound and outbound mail together, oldest first (see `case_detail`)."""
    timed = [(m.received, 0, m.id or 0, _inbound_entry(m)) for m in case.inbound_messages]
    timed += [(m.created, 1, m.id or 0, _outbound_entry(m)) for m in case.outbound_messages]
    # At the same instant the mail that came in is listed before the reply it caused.
    timed.sort(key=lambda t: (_sortable(t[0]), t[1], t[2]))
    return [entry for *_, entry in timed]


def inbound_view(msg: InboundMessage) -> dict[str, Any]:
    """A received message and what became of it, without its raw bytes.

    ``{id, message_id, sender, subject, source, envelope_sender: str | null (the SMTP MAIL FROM,
    "" for the null sender; null when not received by SMTP/LMTP), received: ISO timestamp,
    processed: ISO timestamp | null (null while queued), outcome: str | null,
    reasons: [str], case: number | null, size: bytes, error: str | null}``
    """
    return {
        "id": msg.id,
        "message_id": msg.message_id,
        "sender": msg.sender,
        "subject": msg.subject,
        "source": msg.source,
        "envelope_sender": msg.envelope_sender,
        "received": _timestamp(msg.received),
        "processed": _timestamp(msg.processed),
        "outcome": msg.outcome,
        "reasons": list(msg.reasons or []),
        "case": msg.case_number,
        "size": msg.size,
        "error": msg.error,
    }


def held_view(entry: HeldMessage) -> dict[str, Any]:
    """A message held for the rate of new cases: ``{id, status: held | released, sender, subject, reason,
    until: ISO timestamp (when it is processed by itself), received: ISO timestamp, message: the stored
    message's id, released: ISO timestamp | null, released_by: str | null (null: its time came),
    outcome: the stored message's outcome, case: number | null}``"""
    inbound = entry.inbound_message
    return {
        "id": entry.id,
        "status": entry.status,
        "sender": entry.sender,
        "subject": inbound.subject,
        "reason": entry.reason,
        "until": _timestamp(entry.until),
        "received": _timestamp(inbound.received),
        "message": inbound.id,
        "released": _timestamp(entry.released),
        "released_by": entry.released_by,
        "outcome": inbound.outcome,
        "case": inbound.case_number,
    }


def quarantine_view(entry: QuarantinedMessage) -> dict[str, Any]:
    """A quarantined message: ``{id, status: held | released | dropped, claimed_sender, subject, reason,
    received: ISO timestamp, message: the stored message's id, decided: ISO timestamp | null,
    decided_by: str | null, outcome: the stored message's outcome, case: number | null}``"""
    inbound = entry.inbound_message
    return {
        "id": entry.id,
        "status": entry.status,
        "claimed_sender": entry.claimed_sender,
        "subject": inbound.subject,
        "reason": entry.reason,
        "received": _timestamp(inbound.received),
        "message": inbound.id,
        "decided": _timestamp(entry.decided),
        "decided_by": entry.decided_by,
        "outcome": inbound.outcome,
        "case": inbound.case_number,
    }


def outbox_view(msg: OutboundMessage) -> dict[str, Any]:
    """A message in the outbox, without its raw bytes.

    ``{id, to: [address], subject, status, message_id, in_reply_to: str | null,
    case: number | null, kind, attempts: int, created: ISO timestamp,
    sent: ISO timestamp | null, last_error: str | null}``
    """
    return {
        "id": msg.id,
        "to": list(msg.recipients or []),
        "subject": msg.subject,
        "status": msg.status,
        "message_id": msg.message_id,
        "in_reply_to": msg.in_reply_to,
        "case": msg.case_number,
        "kind": msg.kind,
        "attempts": msg.attempts or 0,
        "created": _timestamp(msg.created),
        "sent": _timestamp(msg.sent),
        "last_error": msg.last_error,
    }


def _inbound_entry(msg: InboundMessage) -> dict[str, Any]:
    headers = _headers(msg.raw)
    return {
        "direction": INBOUND,
        "message_id": msg.message_id,
        "date": _timestamp(msg.received),
        "from": msg.sender,
        "to": _addresses(headers, "To", "Cc"),
        "subject": msg.subject,
        "outcome": msg.outcome,
        "reasons": list(msg.reasons or []),
        "kind": None,
        "status": None,
        "in_reply_to": _in_reply_to(headers),
    }


def _outbound_entry(msg: OutboundMessage) -> dict[str, Any]:
    sender = _addresses(_headers(msg.raw), "From")
    return {
        "direction": OUTBOUND,
        "message_id": msg.message_id,
        "date": _timestamp(msg.created),
        "from": sender[0] if sender else None,
        "to": list(msg.recipients or []),
        "subject": msg.subject,
        "outcome": None,
        "reasons": [],
        "kind": msg.kind,
        "status": msg.status,
        "in_reply_to": msg.in_reply_to,
    }


_HEADER_END = re.compile(rb"\r?\n\r?\n")
_MESSAGE_ID = re.compile(r"<([^<>\s]+)>")


def _headers(raw: bytes | None) -> EmailMessage | None:
    """The header block of stored raw bytes, parsed alone (the body is never read)."""
    if not raw:
        return None
    end = _HEADER_END.search(raw)
    try:
        parsed = BytesHeaderParser(policy=policy.default).parsebytes(raw[:end.start()] if end else raw)
    except Exception:  # bytes that are not mail: no headers to read
        return None
    return parsed  # type: ignore[return-value]  # policy.default makes an EmailMessage


def _header_values(headers: EmailMessage | None, name: str) -> list[str]:
    if headers is None:
        return []
    try:
        return [str(value) for value in headers.get_all(name) or []]
    except Exception:  # a header the parser cannot make sense of counts as absent
        return []


def _addresses(headers: EmailMessage | None, *names: str) -> list[str]:
    """The addresses in the named headers, in order, lower case, each once."""
    found: list[str] = []
    for name in names:
        for _, address in getaddresses(_header_values(headers, name)):
            address = address.strip().lower()
            if "@" in address and address not in found:
                found.append(address)
    return found


def _in_reply_to(headers: EmailMessage | None) -> str | None:
    values = _header_values(headers, "In-Reply-To")
    match = _MESSAGE_ID.search(values[0]) if values else None
    return match.group(1) if match else None


def _attachment(attachment: Attachment) -> dict[str, Any]:
    return {
        "filename": attachment.filename,
        "content_type": attachment.content_type,
        "sniffed_type": attachment.sniffed_type,
        "type_mismatch": attachment.type_mismatch,
        "size": attachment.size,
        "sha256": attachment.sha256,
    }


def _timestamp(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    return _utc(value).isoformat(timespec="seconds")


def _date(value: dt.date | None) -> str | None:
    return None if value is None else value.isoformat()


def _utc(value: dt.datetime) -> dt.datetime:
    # The store gives aware UTC datetimes; a naive one can only be UTC too.
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)


_LAST = dt.datetime.max.replace(tzinfo=dt.UTC)


def _sortable(value: dt.datetime | None) -> dt.datetime:
    # A row not yet flushed has no time; it is the newest.
    return _LAST if value is None else _utc(value)
