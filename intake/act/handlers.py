"""The act stage: one handler per kind of outcome, all inside the transaction that records it.

store raw → parse → decide → **act** → outbox → deliver. `act` looks up the
handler for the decision's type, runs it, queues the answer the decision
names (if any) and records the outcome on the stored message. A handler only
changes state (store the case, add the comment, count the bounce); none of
them decides anything, and none sends mail: answers are rows in the outbox of
the same transaction.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from intake.act.bounces import record_bounce
from intake.act.cases import attachment_row, contact_comment, staff_comment
from intake.act.departments import DepartmentEvent, tell_department
from intake.config import Config
from intake.mailout.compose import Answer, Original, StatusListing, compose_answer, compose_notice, header_text
from intake.mailout.outbox import enqueue
from intake.notify.inbound import add_note, case_joins_notices, unsubscribe
from intake.notify.joining import IncidentJoined
from intake.store.database import add_written, plain_connection
from intake.store.lookups import status_listing
from intake.store.models import Base, Case, HeldMessage, InboundMessage, QuarantinedMessage
from parsers.message import ParsedMessage
from parsers.submission import Submission
from routing.notices import NoteOnNotice, Unsubscribe
from routing.outcomes import (
    AddComment,
    Answered,
    AskForInformation,
    CaseDraft,
    CreateCase,
    Decision,
    Hold,
    Ignore,
    Quarantine,
    RecordBounce,
    Refuse,
    SendStatus,
    SendTemplates,
)
from routing.states import CaseStatus, HeldStatus, Outcome, Reply

__all__ = ["Acting", "Processed", "act", "answer_of"]


@dataclass(frozen=True)
class Processed:
    """What became of one message, for the command line and the logs."""

    inbound_id: int
    outcome: Outcome
    reasons: tuple[str, ...]
    case_number: int | None = None
    reply_to: str | None = None
    message_id: str | None = None
    sender: str | None = None
    ms: int | None = None  # how long processing took


@dataclass(frozen=True)
class Acting:
    """Where a handler acts: the open transaction, the stored message and what was parsed of it."""

    session: Session
    row: InboundMessage
    submission: Submission
    config: Config
    now: dt.datetime


@dataclass(frozen=True)
class Done:
    """What a handler did: the case it made or changed, what it learnt, and what the answer lists."""

    case: Case | None = None
    reasons: tuple[str, ...] = ()
    status: StatusListing | None = None
    answered: bool = True  # False: what the handler found means the answer is not to be sent after all
    incident: IncidentJoined | None = None  # the open incident a new case joined


def act(decision: Decision, acting: Acting) -> Processed:
    done = _HANDLERS[type(decision)](decision, acting)
    reply_to = _queue_answer(decision, acting, done)
    row, case = acting.row, done.case
    recorded = {"outcome": decision.outcome.value, "reasons": [*decision.reasons, *done.reasons],
                "processed": acting.now, "case_number": case.number if case is not None else None}
    # A plain UPDATE rather than the unit of work (a flush costs several times the statement);
    # the loaded row is given the same values, as written.
    plain_connection(acting.session).execute(_RECORD_OUTCOME, {"recorded_id": row.id, **recorded})
    for key, value in recorded.items():
        set_committed_value(row, key, value)
    return Processed(row.id, decision.outcome, tuple(row.reasons), row.case_number, reply_to, row.message_id,
                     row.sender)


_INBOUND = Base.metadata.tables[InboundMessage.__tablename__]
_RECORD_OUTCOME = update(_INBOUND).where(_INBOUND.c.id == bindparam("recorded_id"))


def _queue_answer(decision: Decision, acting: Acting, done: Done) -> str | None:
    if not isinstance(decision, Answered) or not decision.reply_to or not done.answered:
        return None
    message = acting.submission.message
    assert message is not None and decision.reply is not None  # only mail is answered, each kind has a reply
    composed = compose_answer(answer_of(decision, message, done.case, done.status, incident=done.incident),
                              acting.config)
    enqueue(acting.session, composed, decision.reply, [address for _, address in decision.reply_to],
            case=done.case, inbound_id=acting.row.id)
    return decision.reply_to[0][1]


def answer_of(decision: Answered, message: ParsedMessage, case: Case | None = None,
              status: StatusListing | None = None, *, preview: bool = False,
              incident: IncidentJoined | None = None) -> Answer:
    attachments = (tuple((a.filename, len(a.content)) for a in decision.draft.attachments)
                   if isinstance(decision, CreateCase) else ())
    return Answer(decision, Original(message.subject, message.message_id, message.references),
                  case_number=case.number if case is not None else None,
                  case_created=case.created if case is not None else None, attachments=attachments, status=status,
                  preview=preview, incident=incident)


# --- the handlers ----------------------------------------------------------------------


def _create_case(decision: CreateCase, acting: Acting) -> Done:
    case = store_case(acting.session, decision.draft, acting.row.id, acting.now)
    incident, reasons = case_joins_notices(acting.session, case, decision.draft.notice_id, acting.config, acting.now)
    told = tell_department(acting.session, case, DepartmentEvent.NEW_CASE, acting.config,
                           started_by=acting.row.message_id)
    return Done(case=case, incident=incident, reasons=(*reasons, told) if told else reasons)


def store_case(session: Session, draft: CaseDraft, inbound_id: int, now: dt.datetime) -> Case:
    """The case row, written by one plain INSERT, and the case in the session as if read back.

    The unit of work's flush would cost several times the statement, and the
    case number is needed at once (for its attachments and its answer). The
    object is given every column as written, so nothing is read again.
    """
    values = {"account_id": draft.account.id, "contact_id": draft.contact.id,
              "submitted_by_id": draft.submitted_by.id, "case_type": draft.spec.case_type.value,
              "priority": draft.priority, "subject": draft.subject, "description": draft.description,
              "fields": draft.fields, "fields_as_written": draft.fields_as_written, "module": draft.module,
              "status": CaseStatus.NEW.value, "department": draft.department, "billable": draft.billable,
              "resolution": None, "resolved": None, "closed": None, "approved_by": None, "approved": None,
              "follows_case": draft.follows_case, "created": now, "modified": now}
    case = add_written(session, Case, values)
    for attachment in draft.attachments:
        session.add(attachment_row(attachment, case.number, inbound_id))
    return case


def _add_comment(decision: AddComment, acting: Acting) -> Done:
    draft = decision.comment
    case = acting.session.get(Case, draft.case.number)
    assert case is not None  # the decision found it in this transaction
    if draft.by_staff:
        staff_comment(acting.session, case, draft.author, draft.body, acting.config, public=True,
                      attachments=draft.attachments, inbound_id=acting.row.id)
    else:
        comment = contact_comment(acting.session, case, draft.author, draft.body, draft.attachments, acting.row.id,
                                  draft.reopens)
        told = tell_department(acting.session, case, DepartmentEvent.CONTACT_REPLY, acting.config, comment=comment)
        return Done(case=case, reasons=(told,) if told else ())
    return Done(case=case)


def _record_bounce(decision: RecordBounce, acting: Acting) -> Done:
    recorded = record_bounce(acting.session, decision.report, acting.config, acting.now)
    return Done(reasons=(f"ignored, never answered: {recorded}",))


def _send_status(decision: SendStatus, acting: Acting) -> Done:
    return Done(status=status_listing(acting.session, decision.contact.id, acting.config.timezone, acting.now))


def _quarantine(decision: Quarantine, acting: Acting) -> Done:
    """Hold the message for a person, and tell staff with one short notice (never the sender)."""
    entry = QuarantinedMessage(inbound_message_id=acting.row.id, claimed_sender=decision.claimed_sender,
                               reason=decision.why, created=acting.now)
    acting.session.add(entry)
    acting.session.flush()
    staff = acting.config.conversations.staff_addresses
    if not staff:
        return Done(reasons=(f"quarantine number {entry.id}; no staff address is configured to tell",))
    message = acting.submission.message
    assert message is not None  # only mail is authenticated
    values = {"quarantine_id": entry.id, "claimed_sender": header_text(decision.claimed_sender),
              "original_subject": header_text(message.subject) or "(no subject)", "why": header_text(decision.why),
              "received": acting.now.astimezone(acting.config.timezone).strftime("%Y-%m-%d %H:%M %Z")}
    notice = compose_notice(Reply.QUARANTINE_NOTICE, [("", address) for address in staff],
                            f"Quarantined: mail claiming to be {decision.claimed_sender}", values,
                            acting.config)
    enqueue(acting.session, notice, Reply.QUARANTINE_NOTICE, staff, inbound_id=acting.row.id)
    return Done(reasons=(f"quarantine number {entry.id}; staff told ({', '.join(staff)})",))


def _hold(decision: Hold, acting: Acting) -> Done:
    """Keep the message waiting for the rate of new cases: held again (in place) if it was held before."""
    entry = acting.session.scalars(select(HeldMessage).where(HeldMessage.inbound_message_id == acting.row.id)).first()
    again = entry is not None
    if entry is None:
        entry = HeldMessage(inbound_message_id=acting.row.id, created=acting.now)
        acting.session.add(entry)
    entry.sender = acting.row.sender or ""
    entry.reason, entry.until, entry.status = decision.why, decision.until, HeldStatus.HELD.value
    entry.released = entry.released_by = None
    acting.session.flush()
    if again:  # the sender was told when it was first held: one notice per message at most
        return Done(reasons=(f"held message number {entry.id}, held again; no second notice",), answered=False)
    return Done(reasons=(f"held message number {entry.id}",))


def _nothing_to_store(decision: Decision, acting: Acting) -> Done:
    """Refusals, requests for information, templates and ignored mail change nothing but their record."""
    return Done()


def _unsubscribe(decision: Unsubscribe, acting: Acting) -> Done:
    return Done(reasons=(unsubscribe(acting.session, decision.contact_id, acting.now),))


def _note_on_notice(decision: NoteOnNotice, acting: Acting) -> Done:
    add_note(acting.session, decision.notice.id, decision.author, decision.body, acting.row.id, acting.now)
    return Done()


_HANDLERS: dict[type[Decision], Callable[[Any, Acting], Done]] = {
    CreateCase: _create_case,
    Unsubscribe: _unsubscribe,
    NoteOnNotice: _note_on_notice,
    AddComment: _add_comment,
    RecordBounce: _record_bounce,
    Quarantine: _quarantine,
    Hold: _hold,
    SendStatus: _send_status,
    AskForInformation: _nothing_to_store,
    Refuse: _nothing_to_store,
    SendTemplates: _nothing_to_store,
    Ignore: _nothing_to_store,
}
