"""Bounces of intake's own mail: recognised at the decide step, recorded against the contact.

The outbox sends with the configured From address as envelope sender, so a
relay that cannot deliver a reply sends its delivery status notification back
to intake, where it arrives like any other message. The worker asks
`record_bounce` first: a bounce becomes no case and gets no reply; it is
matched to the outbox row it is about and counted against the contact it was
addressed to. Past `bounces_to_suspend` permanent failures the contact is
marked bouncing, and the outbox stops mailing them (see `intake.mailout.delivery`) until
staff run `intake contacts clear-bounce`.

flufl.bounce (GNU Mailman's bounce detectors) finds the failed recipients, in
RFC 3464 reports and in the non-standard forms of qmail, Exchange, Yahoo and
others, and tells delayed from failed. The per-recipient Status and
Diagnostic-Code of an RFC 3464 report are read here, for the decision log.
"""
from __future__ import annotations

import datetime as dt
import email
import email.message
import re
from dataclasses import dataclass
from email.iterators import typed_subpart_iterator
from email.parser import HeaderParser

from flufl.bounce import all_failures
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from intake.config import Config
from intake.store.models import Contact, OutboundMessage
from parsers.message import ParsedMessage

__all__ = ["Failure", "clear_bouncing", "failures_in", "is_bounce_shaped", "record_bounce", "returned_message_ids"]

_DAEMON_LOCAL_PARTS = ("mailer-daemon", "postmaster", "mail-daemon")
_MSGID = re.compile(r"<([^<>\s]+)>")
_MESSAGE_ID_LINE = re.compile(r"^\s*Message-ID:\s*<([^<>\s]+)>", re.IGNORECASE | re.MULTILINE)
_ENHANCED_STATUS = re.compile(r"\b([245]\.\d{1,3}\.\d{1,3})\b")
# The code prefixes of the second and later lines of a multi-line SMTP reply
# ("550-5.1.1 ..."), which a Diagnostic-Code quotes verbatim.
_MULTILINE_REPLY = re.compile(r"^(\d{3})-")
_CONTINUATION = re.compile(r"(?<=\s)\d{3}[ -]\d\.\d{1,3}\.\d{1,3}\s+")
_MAX_DIAGNOSTIC = 300
# How far back the last-resort match (the latest mail sent to the address) looks.
_RECENT_SENT_ROWS = 500

# RFC 3463 meanings of the codes that come up most, for reports that give no text.
_STATUS_TEXT = {
    "5.1.1": "bad destination mailbox address (user unknown)",
    "5.1.2": "bad destination system address (no such domain)",
    "5.1.10": "recipient not found",
    "5.2.1": "mailbox disabled",
    "5.2.2": "mailbox full",
    "5.4.4": "unable to route",
    "5.7.1": "delivery not authorized, message refused",
    "4.2.2": "mailbox full",
    "4.4.1": "no answer from host",
    "4.4.7": "delivery time expired",
}


@dataclass(frozen=True)
class Failure:
    """One recipient a bounce reports, and what it says about them."""

    recipient: str
    permanent: bool
    diagnostic: str


# --- reading a bounce (no database) ---------------------------------------------


def is_bounce_shaped(message: ParsedMessage, report: email.message.Message) -> bool:
    """Mail systems send bounces: a delivery report, or mail from the null sender or a mailer daemon.

    Heuristic bounce detectors also match people's own words ("did not reach
    the following recipient"), and a customer who forwards a bounce to support
    has a case, so only mail shaped like a mail system's is scanned.
    """
    if _delivery_status_parts(report):
        return True
    sender = (message.from_address or "").partition("@")[0]
    return (message.return_path == "" or sender in _DAEMON_LOCAL_PARTS or sender.startswith("microsoftexchange")
            or message.header("X-Failed-Recipients") is not None)


def failures_in(report: email.message.Message) -> list[Failure]:
    """The recipients the bounce reports as failed or delayed, with the diagnostic for each."""
    temporary, permanent = all_failures(report)
    details = _delivery_status_details(report)
    failures = []
    for permanent_failure, addresses in ((True, permanent), (False, temporary - permanent)):
        for address in sorted(a.decode("ascii").lower() for a in addresses):
            diagnostic = details.get(address) or _diagnostic_from_text(report, permanent_failure)
            failures.append(Failure(address, permanent_failure, diagnostic))
    return failures


def returned_message_ids(report: email.message.Message) -> list[str]:
    """Message-IDs of the returned original: its attached message or headers, else quoted in the text."""
    found: list[str] = []
    for part in report.walk():
        content_type = part.get_content_type()
        if content_type == "message/rfc822":
            found += [m for returned in _subparts(part) for m in _message_ids(str(returned.get("Message-ID", "")))]
        elif content_type == "text/rfc822-headers":
            found += _message_ids(str(HeaderParser().parsestr(_text_of(part)).get("Message-ID", "")))
    if found:
        return found
    own = _message_ids(str(report.get("Message-ID", "")))
    quoted = [m for part in typed_subpart_iterator(report, "text") for m in _MESSAGE_ID_LINE.findall(_text_of(part))]
    return [m for m in quoted if m not in own]


def _delivery_status_parts(report: email.message.Message) -> list[email.message.Message]:
    return [part for part in report.walk() if part.get_content_type() == "message/delivery-status"]


def _delivery_status_details(report: email.message.Message) -> dict[str, str]:
    """Per-recipient "status diagnostic" from every message/delivery-status part, by address."""
    details: dict[str, str] = {}
    for part in _delivery_status_parts(report):
        for block in _subparts(part):
            text = _status_text(str(block.get("Status", "")).strip(), str(block.get("Diagnostic-Code", "")))
            for header in ("Original-Recipient", "Final-Recipient", "X-Actual-Recipient"):
                address = _typed_address(str(block.get(header, "")))
                if address and text:
                    details.setdefault(address, text)
    return details


def _typed_address(value: str) -> str:
    """`rfc822; kelly@example.org` → `kelly@example.org`."""
    address = value.rpartition(";")[2].strip().strip("<>").strip()
    return address.lower() if "@" in address else ""


def _status_text(status: str, diagnostic_code: str) -> str:
    diagnostic = " ".join(diagnostic_code.partition(";")[2].split()) if ";" in diagnostic_code \
        else " ".join(diagnostic_code.split())
    if not diagnostic:
        return f"{status} {_STATUS_TEXT.get(status, '')}".strip()
    if _MULTILINE_REPLY.match(diagnostic):
        diagnostic = " ".join(_CONTINUATION.sub(" ", _MULTILINE_REPLY.sub(r"\1 ", diagnostic)).split())
    if status and status not in diagnostic:
        diagnostic = f"{status} {diagnostic}"
    return _shorten(diagnostic)


def _diagnostic_from_text(report: email.message.Message, permanent: bool) -> str:
    """For non-standard bounces: the first line of the explanation that carries a status code."""
    for part in typed_subpart_iterator(report, "text", "plain"):
        for line in _text_of(part).splitlines():
            if _ENHANCED_STATUS.search(line):
                return _shorten(" ".join(line.split()))
    return "permanent failure (no diagnostic given)" if permanent else "delivery delayed (no diagnostic given)"


def _subparts(part: email.message.Message) -> list[email.message.Message]:
    """The parts inside a multipart, a message/rfc822 or a message/delivery-status (its header blocks)."""
    payload = part.get_payload() if part.is_multipart() else []
    return [item for item in payload if isinstance(item, email.message.Message)]


def _text_of(part: email.message.Message) -> str:
    payload = part.get_payload(decode=True)
    if isinstance(payload, bytes):
        return payload.decode(part.get_content_charset() or "utf-8", "replace")
    return str(part.get_payload())


def _message_ids(value: str) -> list[str]:
    return [m.strip() for m in _MSGID.findall(value)]


def _shorten(text: str) -> str:
    return text if len(text) <= _MAX_DIAGNOSTIC else text[:_MAX_DIAGNOSTIC - 1] + "…"


# --- recording it ---------------------------------------------------------------


def record_bounce(session: Session, message: ParsedMessage, raw: bytes, config: Config,
                  now: dt.datetime) -> str | None:
    """Record a bounce of our own mail; the reason for the decision log, or None when it is no bounce.

    Runs inside the worker's transaction for the inbound message. A delivery
    report that names no failed recipient (a "delivered" or "relayed" notice)
    still returns a reason: it is a report, not a request for support.
    """
    report = email.message_from_bytes(raw)
    if not is_bounce_shaped(message, report):
        return None
    failures = failures_in(report)
    if not failures:
        if _delivery_status_parts(report):
            return "delivery status notification naming no failed recipient; nothing to record"
        return None
    candidates = returned_message_ids(report) + [m for m in (message.in_reply_to, *message.references) if m]
    reasons = [_record_failure(session, failure, candidates, config, now) for failure in failures]
    return "; ".join(reasons)


def _record_failure(session: Session, failure: Failure, candidates: list[str], config: Config,
                    now: dt.datetime) -> str:
    outbound, by_id = _outbound_for(session, candidates, failure.recipient)
    what = "bounce" if failure.permanent else "delayed delivery"
    if outbound is None:
        return (f"{what} to {failure.recipient}: {failure.diagnostic}; no mail of ours to that address found, "
                f"not counted")
    head = f"{what} of <{outbound.message_id}> to {failure.recipient}: {failure.diagnostic}"
    if not failure.permanent:
        outbound.last_error = f"delayed: {failure.diagnostic}"
        return f"{head} (temporary; not counted)"
    already_counted = by_id and (outbound.last_error or "").startswith("bounced: ")
    outbound.last_error = f"bounced: {failure.diagnostic}"
    contact = _contact_for(session, failure.recipient, outbound)
    if contact is None:
        return f"{head} (not a contact; nothing to count)"
    if already_counted:
        return f"{head} (this message's bounce was already counted)"
    return f"{head} ({_count(contact, config.conversations.bounces_to_suspend, now)})"


def _count(contact: Contact, threshold: int, now: dt.datetime) -> str:
    """Count one permanent failure against the contact; the tally in words."""
    was_bouncing = contact.bouncing
    contact.bounces = (contact.bounces or 0) + 1
    contact.last_bounce = now
    contact.bouncing = was_bouncing or contact.bounces >= threshold
    if was_bouncing:
        return f"{contact.bounces} bounces; already suspended"
    if contact.bouncing:
        return (f"{contact.bounces} of {threshold}: {contact.email} is suspended until staff clear it with "
                f"`intake contacts clear-bounce {contact.email}`")
    return f"{contact.bounces} of {threshold} before suspension"


def _outbound_for(session: Session, candidates: list[str], recipient: str) -> tuple[OutboundMessage | None, bool]:
    """The outbox row the bounce is about, and whether it was found by its Message-ID."""
    if candidates:
        rows = {row.message_id: row for row in
                session.scalars(select(OutboundMessage).where(OutboundMessage.message_id.in_(candidates)))}
        for message_id in candidates:
            if message_id in rows:
                return rows[message_id], True
    recent = session.scalars(select(OutboundMessage).where(OutboundMessage.status == "sent")
                             .order_by(OutboundMessage.sent.desc(), OutboundMessage.id.desc())
                             .limit(_RECENT_SENT_ROWS))
    for row in recent:
        if recipient in (address.lower() for address in row.recipients or []):
            return row, False
    return None, False


def _contact_for(session: Session, recipient: str, outbound: OutboundMessage) -> Contact | None:
    """The contact with the failed address; else the one recipient of the bounced mail (a forward)."""
    addresses = [recipient]
    if len(outbound.recipients or []) == 1:
        addresses.append(outbound.recipients[0].lower())
    for address in addresses:
        contact = session.scalars(select(Contact).where(func.lower(Contact.email) == address)).first()
        if contact is not None:
            return contact
    return None


def clear_bouncing(session: Session, email_address: str) -> bool:
    """Let the contact be mailed again and start their count afresh; False when there is no such contact.

    Messages suppressed meanwhile stay suppressed: they were answers to mail
    that is long past.
    """
    contact = session.scalars(select(Contact).where(func.lower(Contact.email) == email_address.strip().lower())).first()
    if contact is None:
        return False
    contact.bouncing = False
    contact.bounces = 0
    return True
