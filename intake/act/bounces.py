"""Bounces of intake's own mail, recorded against the contact: the act stage's handler for a delivery report.

The outbox sends with the configured From address as envelope sender, so a
relay that cannot deliver a reply sends its delivery status notification back
to intake, where it arrives like any other message. The parse stage reads the
report (`parsers.report`), routing decides it is a bounce to record, and this
module matches it to the outbox row it is about and counts it against the
contact it was addressed to. Past `bounces_to_suspend` permanent failures the
contact is marked bouncing, and delivery stops mailing them (see
`intake.mailout.delivery`) until staff run `intake contacts clear-bounce`.
"""
from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from intake.config import Config
from intake.store.models import Contact, OutboundMessage
from parsers.report import DeliveryReport, Failure
from routing.states import OutboxStatus

__all__ = ["clear_bouncing", "record_bounce"]

# How far back the last-resort match (the latest mail sent to that address) looks.
_RECENT_SENT_ROWS = 500


def record_bounce(session: Session, report: DeliveryReport, config: Config, now: dt.datetime) -> str:
    """Record a bounce of our own mail in the caller's transaction; the reason for the decision log.

    A delivery report that names no failed recipient (a "delivered" or
    "relayed" notice) records nothing: it is a report, not a request for support.
    """
    if not report.failures:
        return "delivery status notification naming no failed recipient; nothing to record"
    candidates = list(report.returned_message_ids)
    return "; ".join(_record_failure(session, failure, candidates, config, now) for failure in report.failures)


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
    recent = session.scalars(select(OutboundMessage).where(OutboundMessage.status == OutboxStatus.SENT.value)
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
