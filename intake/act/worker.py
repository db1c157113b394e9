"""The worker: a stored raw message → parse → decide → act, in one transaction.

A row of `inbound_messages` with no outcome is work to do. The worker claims
it (skipping rows another worker holds, on PostgreSQL), decides, and in the
same transaction stores the case, queues the reply in the outbox and records
the outcome with its reasons. An unexpected error rolls all of that back and
marks the message `failed` with its traceback; it is never lost and can be
replayed.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import logging
import traceback
from dataclasses import dataclass, replace
from typing import Sequence

from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from intake.config import Config
from intake.act.bounces import record_bounce
from intake.act.cases import contact_comment, over_reply_cap, queue_mail, staff_comment, status_values
from intake.store.lookups import DatabaseDirectory, DatabaseThreads
from intake.store.models import Attachment, Case, InboundMessage, utcnow
from intake.mailout.compose import Envelope, ReplyContext, render, render_reply
from intake.store.database import Store
from parsers.message import NotAnEmail, ParsedMessage, parse_message
from routing.contacts import Directory
from routing.decide import CommentDraft, Decision, Policy, decide
from routing.outcomes import Outcome, Reply
from routing.threads import Threads


log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Processed:
    """What became of one message, for the command line and the logs."""

    inbound_id: int
    outcome: Outcome
    reasons: tuple[str, ...]
    case_number: int | None = None
    reply_to: str | None = None


@dataclass(frozen=True)
class Preview:
    """A decision made without writing anything (`intake ingest --dry-run`)."""

    message: ParsedMessage | None
    decision: Decision
    reply: bytes | None


def policy_for(config: Config, now: dt.datetime) -> Policy:
    conversations = config.conversations
    return Policy(own_addresses=frozenset((*config.support_addresses, config.from_address)),
                  max_message_bytes=config.max_message_bytes,
                  today=now.astimezone(config.timezone).date(),
                  department_for=config.department_for,
                  now=now, secret=conversations.secret, support_addresses=config.support_addresses,
                  staff_addresses=conversations.staff_addresses, plus_addressing=conversations.plus_addressing,
                  reopen_window=dt.timedelta(days=conversations.reopen_window_days),
                  trusted_authserv_ids=frozenset(config.trusted_authserv_ids))


def decide_raw(raw: bytes, directory: Directory, threads: Threads, config: Config,
               now: dt.datetime) -> tuple[ParsedMessage | None, Decision]:
    try:
        message = parse_message(raw)
    except NotAnEmail as exc:
        return None, Decision(Outcome.IGNORED, (f"ignored, never answered: not an email message: {exc}",))
    return message, decide(message, len(raw), directory, threads, policy_for(config, now))


def preview(raw: bytes, directory: Directory, threads: Threads, config: Config,
            now: dt.datetime | None = None) -> Preview:
    now = now or utcnow()
    message, decision = decide_raw(raw, directory, threads, config, now)
    reply = None
    if message is not None and decision.reply is not None:
        context = replace(_reply_context(message, decision, None), preview=True)
        reply = render_reply(context, config).as_bytes()
    return Preview(message, decision, reply)


def process_pending(store: Store, config: Config, now: dt.datetime | None = None) -> list[Processed]:
    """Process every stored message that has no outcome yet, oldest first."""
    done = []
    while (processed := process_next(store, config, now)) is not None:
        done.append(processed)
    return done


def process_next(store: Store, config: Config, now: dt.datetime | None = None) -> Processed | None:
    with store.session() as session:
        query = (select(InboundMessage.id).where(InboundMessage.outcome.is_(None))
                 .order_by(InboundMessage.id).limit(1))
        inbound_id = session.scalars(query).first()
    return None if inbound_id is None else process_message(store, config, inbound_id, now)


def process_message(store: Store, config: Config, inbound_id: int, now: dt.datetime | None = None) -> Processed | None:
    """Decide and act on one stored message; None when another worker has it or it is done."""
    now = now or utcnow()
    try:
        with store.session() as session, session.begin():
            row = _claim(session, inbound_id)
            if row is None:
                return None
            return _act(session, row, config, now)
    except OperationalError as exc:
        # The database is busy or away (a lock held too long, a dropped connection): nothing
        # was written, the message stays unprocessed and is taken up again on the next pass.
        log.warning("message %s left for the next pass: %s", inbound_id, exc.orig or exc)
        return None
    except Exception as exc:  # a bug: keep the message, record why, go on
        return _mark_failed(store, inbound_id, exc)


def _claim(session: Session, inbound_id: int) -> InboundMessage | None:
    query = select(InboundMessage).where(InboundMessage.id == inbound_id, InboundMessage.outcome.is_(None))
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    return session.scalars(query).first()


def _act(session: Session, row: InboundMessage, config: Config, now: dt.datetime) -> Processed:
    message, decision = decide_raw(row.raw, DatabaseDirectory(session), DatabaseThreads(session), config, now)
    bounce = record_bounce(session, message, row.raw, config, now) if message is not None else None
    if bounce is not None:
        decision = Decision(Outcome.IGNORED, (f"ignored, never answered: {bounce}",))
    reasons = list(decision.reasons)
    case = _create_case(session, row, decision) if decision.draft else None
    if decision.comment is not None:
        case = _add_reply_comment(session, row, decision.comment, config)
    reply_to = None
    if message is not None and decision.reply is not None:
        if over_reply_cap(session, message.from_address or "", config, now):
            reasons.append(f"no reply sent: {message.from_address} already had "
                           f"{config.conversations.auto_replies_per_hour} automatic replies this hour")
        else:
            reply_to = _queue_reply(session, row, message, decision, case, config, now)
    row.outcome = decision.outcome.value
    row.reasons = reasons
    row.processed = now
    row.case_number = case.number if case else None
    return Processed(row.id, decision.outcome, tuple(reasons), row.case_number, reply_to)


def _add_reply_comment(session: Session, row: InboundMessage, draft: CommentDraft, config: Config) -> Case:
    case = session.get(Case, draft.case.number)
    assert case is not None  # the decision found it in this transaction
    if draft.by_staff:
        staff_comment(session, case, draft.author, draft.body, config, public=True, attachments=draft.attachments,
                      inbound_id=row.id)
    else:
        contact_comment(session, case, draft.author, draft.body, draft.attachments, row.id, draft.reopens)
    return case


def _create_case(session: Session, row: InboundMessage, decision: Decision) -> Case:
    draft = decision.draft
    assert draft is not None
    case = Case(account_id=draft.account.id, contact_id=draft.contact.id, submitted_by_id=draft.submitted_by.id,
                case_type=draft.spec.case_type.value, priority=draft.priority, subject=draft.subject,
                description=draft.description, fields=draft.fields, fields_as_written=draft.fields_as_written,
                module=draft.module, department=draft.department, billable=draft.billable,
                follows_case=draft.follows_case)
    session.add(case)
    session.flush()
    for attachment in draft.attachments:
        session.add(Attachment(case_number=case.number, inbound_message_id=row.id, filename=attachment.filename,
                               content_type=attachment.content_type, size=len(attachment.content),
                               sha256=hashlib.sha256(attachment.content).hexdigest(), content=attachment.content))
    session.flush()
    return case


def _reply_context(message: ParsedMessage, decision: Decision, case: Case | None) -> ReplyContext:
    assert decision.reply is not None and message.from_address
    attachments = tuple((a.filename, len(a.content)) for a in (decision.draft.attachments if decision.draft else ()))
    draft = decision.draft
    # A case filed on someone's behalf is acknowledged to them too.
    also_to = ((draft.contact.full_name, draft.contact.email),) if draft and draft.contact.id != draft.submitted_by.id \
        else ()
    return ReplyContext(kind=decision.reply, to=message.from_address, to_name=message.from_name,
                        original_subject=message.subject, original_message_id=message.message_id,
                        original_references=message.references, decision=decision,
                        case_number=case.number if case else None, case_created=case.created if case else None,
                        attachments=attachments, also_to=also_to)


def _queue_reply(session: Session, row: InboundMessage, message: ParsedMessage, decision: Decision,
                 case: Case | None, config: Config, now: dt.datetime) -> str:
    assert decision.reply is not None and message.from_address
    recipients = [message.from_address]
    if decision.reply is Reply.STATUS:
        envelope = Envelope(to=((message.from_name, message.from_address),), subject="Your cases",
                            in_reply_to=message.message_id, references=message.references)
        values = {"to_name": message.from_name, **status_values(session, message.from_address, config, now)}
        rendered = render(Reply.STATUS, values, envelope, config)
    else:
        context = _reply_context(message, decision, case)
        rendered = render_reply(context, config)
        recipients += [address for _, address in context.also_to]
    queue_mail(session, rendered, decision.reply, recipients, case_number=case.number if case else None,
               inbound_id=row.id)
    return message.from_address


def _mark_failed(store: Store, inbound_id: int, exc: Exception) -> Processed:
    reason = f"internal error, kept for replay: {type(exc).__name__}: {exc}"
    with store.session() as session, session.begin():
        row = session.get(InboundMessage, inbound_id)
        if row is not None and row.outcome is None:
            row.outcome = Outcome.FAILED.value
            row.reasons = [reason]
            row.error = traceback.format_exc()
            row.processed = utcnow()
    return Processed(inbound_id, Outcome.FAILED, (reason,))


def replay(store: Store, config: Config, inbound_ids: Sequence[int]) -> list[Processed]:
    """Process failed messages again (after the cause is fixed)."""
    with store.session() as session, session.begin():
        for row in session.scalars(select(InboundMessage).where(InboundMessage.id.in_(inbound_ids),
                                                                InboundMessage.outcome == Outcome.FAILED.value)):
            row.outcome = None
    return [p for i in inbound_ids if (p := process_message(store, config, i)) is not None]
