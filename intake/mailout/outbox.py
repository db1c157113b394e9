"""The outbox: every outgoing message is a row, written in the transaction that caused it.

Nothing sends mail inline. A handler of the act stage (or a staff command)
composes its mail (`intake.mailout.compose`) and `enqueue`s it here, in its own
transaction, so a change and its mail are committed together or not at all;
`intake.mailout.delivery` then hands the rows on and retries them.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from email.message import Message

from sqlalchemy import insert, inspect
from sqlalchemy.orm import Session

from intake.mailout.compose import CaseThread
from intake.store.models import Base, Case, OutboundMessage, utcnow
from parsers.message import bare_message_id
from routing.states import OutboxStatus, Reply

__all__ = ["Prepared", "case_thread", "enqueue", "enqueue_prepared"]

# How many earlier Message-IDs a new message about a case lists in References.
MAX_REFERENCES = 20


def enqueue(session: Session, message: Message, kind: Reply, recipients: Sequence[str], *,
            case: Case | None = None, inbound_id: int | None = None) -> None:
    """Queue a composed message for delivery, in the caller's transaction."""
    in_reply_to = message["In-Reply-To"]
    values = {"message_id": bare_message_id(str(message["Message-ID"])),
              "in_reply_to": bare_message_id(str(in_reply_to)) if in_reply_to else None,
              "kind": kind.value, "recipients": list(recipients), "subject": str(message["Subject"]),
              "raw": message.as_bytes(), "status": OutboxStatus.QUEUED.value, "created": utcnow(),
              "case_number": case.number if case is not None else None, "inbound_message_id": inbound_id}
    if case is not None and (case.number is None or "outbound_messages" not in inspect(case).unloaded):
        # The case's outbox rows are loaded (`case_thread` read them), or the case is not written
        # yet: through the relationship, so the next message on this thread in the transaction
        # lists this one too.
        session.add(OutboundMessage(**values, case=case))
        return
    # A plain INSERT, not the unit of work: the act stage queues an answer for nearly every
    # message, and a flush costs several times the statement. A later read of the case's
    # outbox in this transaction finds the row in the database. On the session's connection: what
    # `Session.execute` adds for a plain statement is there to load objects, and this loads none.
    session.connection().execute(_INSERT_OUTBOUND, values)


_INSERT_OUTBOUND = insert(Base.metadata.tables[OutboundMessage.__tablename__])


@dataclass(frozen=True)
class Prepared:
    """A message already rendered to bytes (notice mail, personalised per recipient), for one recipient."""

    message_id: str  # without brackets
    in_reply_to: str | None
    recipient: str
    subject: str
    raw: bytes


def enqueue_prepared(session: Session, kind: Reply, messages: Sequence[Prepared]) -> int:
    """Queue many prepared messages in one statement, in the caller's transaction; how many."""
    if messages:
        session.execute(insert(OutboundMessage), [
            {"message_id": m.message_id, "in_reply_to": m.in_reply_to, "kind": kind.value,
             "recipients": [m.recipient], "subject": m.subject, "raw": m.raw, "status": OutboxStatus.QUEUED.value}
            for m in messages])
    return len(messages)


def case_thread(case: Case) -> CaseThread:
    """The case's thread as a new message on it continues it: the latest message, and all before."""
    timed = [(m.received, m.message_id) for m in case.inbound_messages if m.message_id]
    timed += [(m.created, m.message_id) for m in case.outbound_messages]
    ids = [message_id for _, message_id in sorted(timed, key=lambda pair: pair[0])]
    return CaseThread(case.number, case.subject, ids[-1] if ids else None, tuple(ids[-MAX_REFERENCES:]))
