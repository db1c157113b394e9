"""The quarantine's review: a person releases a held message (it is processed as if its sender had
authenticated) or drops it (kept, marked dropped, never processed). Nothing is ever deleted."""
from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from intake.act.handlers import Processed
from intake.act.worker import decide_and_act
from intake.config import Config
from intake.store.database import Store
from intake.store.models import QuarantinedMessage, utcnow
from routing.authenticity import Verdict
from routing.states import Outcome, QuarantineStatus

__all__ = ["QuarantineError", "drop", "release"]


class QuarantineError(ValueError):
    """The quarantined message cannot be released or dropped as asked; the message says why."""


def release(store: Store, config: Config, entry_id: int, by: str, now: dt.datetime | None = None) -> Processed:
    """Process a held message as if its sender had authenticated, in one transaction with the release."""
    now = now or utcnow()
    with store.session() as session, session.begin():
        entry = _held(session, entry_id)
        row = entry.inbound_message
        before = list(row.reasons)  # why it was held, kept above what its release decided
        processed = decide_and_act(session, row, config, now,
                                   Verdict.passed(f"released from quarantine number {entry.id} by {by}"))
        row.reasons = [*before, *row.reasons]
        _decided(entry, QuarantineStatus.RELEASED, by, now)
        return processed


def drop(store: Store, entry_id: int, by: str, now: dt.datetime | None = None) -> None:
    """Mark a held message dropped: it stays stored with its outcome `quarantined`, and is never processed."""
    now = now or utcnow()
    with store.session() as session, session.begin():
        entry = _held(session, entry_id)
        entry.inbound_message.reasons = [*entry.inbound_message.reasons, f"dropped from the quarantine by {by}"]
        _decided(entry, QuarantineStatus.DROPPED, by, now)


def _held(session: Session, entry_id: int) -> QuarantinedMessage:
    entry = session.get(QuarantinedMessage, entry_id, with_for_update=True)  # one release wins
    if entry is None:
        raise QuarantineError(f"no quarantined message {entry_id}; `intake quarantine list` shows them")
    if entry.status != QuarantineStatus.HELD.value:
        raise QuarantineError(f"quarantined message {entry_id} was already {entry.status} by {entry.decided_by} "
                              f"on {entry.decided:%Y-%m-%d %H:%M} UTC" if entry.decided else
                              f"quarantined message {entry_id} is {entry.status}")
    if entry.inbound_message.outcome != Outcome.QUARANTINED.value:
        raise QuarantineError(f"message {entry.inbound_message_id} is no longer quarantined "
                              f"(its outcome is {entry.inbound_message.outcome})")
    return entry


def _decided(entry: QuarantinedMessage, status: QuarantineStatus, by: str, now: dt.datetime) -> None:
    entry.status = status.value
    entry.decided = now
    entry.decided_by = by
