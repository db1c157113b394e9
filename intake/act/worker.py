"""The worker: a stored raw message → parse → decide → act, in one transaction.

A row of `inbound_messages` with no outcome is work to do. The one worker
loop (`process_stored`) takes those rows oldest first; `process_message`
claims one (skipping rows another worker holds, on PostgreSQL), parses it
once (`parsers.submission.parse`), decides (`routing.decide`), and acts on the
outcome (`intake.act.handlers`) in the same transaction: the case, the
answer queued in the outbox and the outcome with its reasons are committed
together. An unexpected error rolls all of that back and marks the message
`failed` with its traceback; it is never lost and can be replayed.
"""
from __future__ import annotations

import datetime as dt
import logging
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from intake.act.handlers import Acting, Processed, act, answer_of
from intake.config import Config
from intake.logs import logfmt
from intake.mailout.compose import StatusListing, compose_answer
from intake.store.database import Store
from intake.store.lookups import EMPTY_VIEWS, status_listing, views_over
from intake.store.models import HeldMessage, InboundMessage, utcnow
from intake.trust import authenticate
from parsers.submission import Submission, parse
from routing.authenticity import Verdict
from routing.decide import Policy, Views, decide
from routing.outcomes import Answered, Decision, SendStatus
from routing.states import HeldStatus, Outcome

__all__ = ["Preview", "Processed", "decide_and_act", "policy_for", "preview", "process_message", "process_stored",
           "replay"]

log = logging.getLogger(__name__)

BATCH = 100


@dataclass(frozen=True)
class Preview:
    """A decision made without writing anything (`intake ingest --dry-run`)."""

    submission: Submission
    decision: Decision
    reply: bytes | None


def policy_for(config: Config, now: dt.datetime) -> Policy:
    conversations = config.conversations
    return Policy(own_addresses=frozenset((*config.support_addresses, config.from_address)),
                  today=now.astimezone(config.timezone).date(),
                  department_for=config.department_for, case_types=config.case_types,
                  now=now, secret=conversations.secret, support_addresses=config.support_addresses,
                  staff_addresses=conversations.staff_addresses, plus_addressing=conversations.plus_addressing,
                  reopen_window=dt.timedelta(days=conversations.reopen_window_days),
                  unauthenticated_domains=config.security.unauthenticated_domains,
                  cases_per_hour_per_sender=config.case_rate.per_sender,
                  cases_per_hour_per_account=config.case_rate.per_account,
                  auto_replies_per_hour=conversations.auto_replies_per_hour)


# --- the one worker loop ------------------------------------------------------------


def process_stored(store: Store, config: Config, *, keep_going: Callable[[], bool] = lambda: True,
                   on_processed: Callable[[Processed], None] = lambda processed: None,
                   clock: Callable[[], dt.datetime] = utcnow) -> int:
    """Process every stored message that has no outcome yet, oldest first; how many were processed.

    Held messages whose time has come are taken up first, in the order they
    arrived. Stops early when `keep_going()` turns false (a shutdown whose
    grace time is over); what is left waits for the next pass or the next start.
    ``clock`` is the time the pass decides by (tests move it on).
    """
    release_due(store, clock())
    done, after = 0, 0
    while batch := _pending_after(store, after):
        for inbound_id in batch:
            if not keep_going():
                return done
            started = time.monotonic()
            processed = process_message(store, config, inbound_id, clock())
            after = inbound_id
            if processed is not None:
                done += 1
                on_processed(replace(processed, ms=round((time.monotonic() - started) * 1000)))
    return done


def release_due(store: Store, now: dt.datetime) -> int:
    """Held messages whose time has come are made pending again; the loop then takes them in arrival order."""
    with store.session() as session, session.begin():
        due = session.scalars(select(HeldMessage).where(HeldMessage.status == HeldStatus.HELD.value,
                                                        HeldMessage.until <= now)).all()
        for entry in due:
            entry.status, entry.released = HeldStatus.RELEASED.value, now
            if entry.inbound_message.outcome == Outcome.HELD.value:
                entry.inbound_message.outcome = None
        return len(due)


def _pending_after(store: Store, after: int) -> list[int]:
    with store.session() as session:
        return list(session.scalars(select(InboundMessage.id)
                                    .where(InboundMessage.outcome.is_(None), InboundMessage.id > after)
                                    .order_by(InboundMessage.id).limit(BATCH)))


def process_message(store: Store, config: Config, inbound_id: int, now: dt.datetime | None = None) -> Processed | None:
    """Decide and act on one stored message; None when another worker has it or it is done."""
    now = now or utcnow()
    try:
        with store.session() as session, session.begin():
            row = _claim(session, inbound_id)
            if row is None:
                return None
            return decide_and_act(session, row, config, now)
    except OperationalError as exc:
        # The database is busy or away (a lock held too long, a dropped connection): nothing
        # was written, the message stays unprocessed and is taken up again on the next pass.
        log.warning(logfmt(event="left_for_next_pass", inbound=inbound_id, error=exc.orig or exc))
        return None
    except Exception as exc:  # a bug: keep the message, record why, go on
        return _mark_failed(store, inbound_id, exc)


def decide_and_act(session: Session, row: InboundMessage, config: Config, now: dt.datetime,
                   verdict: Verdict | None = None, *, ignore_case_rate: bool = False) -> Processed:
    """Parse, authenticate (unless ``verdict`` is given: a person vouched for the sender), decide and act.

    ``ignore_case_rate``: a person released a held message, to be processed now.
    """
    submission = parse(row.raw, config.case_types.forms, row.envelope_sender, config.limits)
    if verdict is None:
        verdict = authenticate(row.raw, submission, config.security)
    policy = replace(policy_for(config, now), ignore_case_rate=ignore_case_rate)
    decision = decide(submission, views_over(session), policy, verdict)
    return act(decision, Acting(session, row, submission, config, now))


def _claim(session: Session, inbound_id: int) -> InboundMessage | None:
    query = select(InboundMessage).where(InboundMessage.id == inbound_id, InboundMessage.outcome.is_(None))
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    return session.scalars(query).first()


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


# --- the dry run --------------------------------------------------------------------


def preview(raw: bytes, session: Session | None, config: Config, now: dt.datetime | None = None) -> Preview:
    """What would happen to `raw`, decided against the database in `session` (or an empty one)."""
    now = now or utcnow()
    submission = parse(raw, config.case_types.forms, limits=config.limits)
    views: Views = views_over(session) if session is not None else EMPTY_VIEWS
    decision = decide(submission, views, policy_for(config, now), authenticate(raw, submission, config.security))
    reply = None
    if isinstance(decision, Answered) and decision.reply_to and submission.message is not None:
        status = _status_of(decision, session, config, now)
        reply = compose_answer(answer_of(decision, submission.message, status=status, preview=True), config).as_bytes()
    return Preview(submission, decision, reply)


def _status_of(decision: Decision, session: Session | None, config: Config, now: dt.datetime) -> StatusListing | None:
    if not isinstance(decision, SendStatus) or session is None:
        return None
    return status_listing(session, decision.contact.id, config.timezone, now)
