"""Delivering the outbox: the last step of the flow.

Replies are queued as rows in the same transaction as their cause (see
`intake.worker`); this module hands them on. With no SMTP relay configured the
sink is a local Maildir, where any mail client or `ls` can read what intake
sent. A message is marked sent only after the sink has it.
"""
from __future__ import annotations

import mailbox
from pathlib import Path

from sqlalchemy import select

from intake.config import Config
from intake.models import OutboundMessage, utcnow
from intake.store import Store


def deliver_to_maildir(raw: bytes, maildir: Path) -> str:
    """Add one message to the Maildir's `new/`, creating the folder; returns its key."""
    box = mailbox.Maildir(str(maildir), factory=None, create=True)
    try:
        return box.add(raw)
    finally:
        box.close()


def deliver_pending(store: Store, config: Config) -> int:
    """Deliver every queued message; returns how many were delivered."""
    delivered = 0
    with store.session() as session:
        pending = session.scalars(select(OutboundMessage.id).where(OutboundMessage.status == "queued")
                                  .order_by(OutboundMessage.id)).all()
    for outbound_id in pending:
        with store.session() as session, session.begin():
            row = session.get(OutboundMessage, outbound_id)
            if row is None or row.status != "queued":
                continue
            row.attempts += 1
            deliver_to_maildir(row.raw, config.outgoing_maildir)
            row.status = "sent"
            row.sent = utcnow()
            delivered += 1
    return delivered
