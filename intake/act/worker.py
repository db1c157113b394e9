"""The worker: a stored raw message → parse → decide → act, in one transaction.

A row of `inbound_messages` with no outcome is work to do. The one worker
loop (`process_pass`) takes those rows oldest first, and `process_messages`
the ones `intake ingest` has just stored; each claims them (skipping rows
another worker holds, on PostgreSQL), parses each message
once (`parsers.submission.parse`), decides (`routing.decide`), and acts on the
outcome (`intake.act.handlers`) in the same transaction: the case, the
answer queued in the outbox and the outcome with its reasons are committed
together. An unexpected error rolls all of that back and marks the message
`failed` with its traceback; it is never lost and can be replayed.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import logging
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

from sqlalchemy import Select, bindparam, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, make_transient_to_detached

from intake.act.handlers import Acting, Processed, act, answer_of
from intake.config import Config
from intake.logs import logfmt
from intake.mailout.compose import StatusListing, compose_answer
from intake.store.database import Store, load_raw, plain_connection
from intake.store.lookups import EMPTY_VIEWS, status_listing, views_over
from intake.store.models import Base, HeldMessage, InboundMessage, utcnow
from intake.store.turns import WORKER_POLL_SECONDS, turn
from intake.trust import authenticate
from parsers.submission import Submission, parse
from routing.authenticity import Verdict
from routing.decide import Policy, Views, decide
from routing.outcomes import Answered, Decision, SendStatus
from routing.states import HeldStatus, Outcome

__all__ = ["Preview", "Processed", "decide_and_act", "policy_for", "preview", "process_messages", "process_stored",
           "replay"]

log = logging.getLogger(__name__)


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


@dataclass(frozen=True)
class Pass:
    """What one pass of the worker loop did."""

    processed: int = 0  # messages that got their outcome
    waiting: int = 0  # replies left for later: the message they answer is not processed yet


def process_stored(store: Store, config: Config, *, keep_going: Callable[[], bool] = lambda: True,
                   on_processed: Callable[[Processed], None] = lambda processed: None,
                   clock: Callable[[], dt.datetime] = utcnow) -> int:
    """Process every stored message that has no outcome yet, oldest first; how many were processed."""
    return process_pass(store, config, keep_going=keep_going, on_processed=on_processed, clock=clock).processed


def process_pass(store: Store, config: Config, *, keep_going: Callable[[], bool] = lambda: True,
                 on_processed: Callable[[Processed], None] = lambda processed: None,
                 clock: Callable[[], dt.datetime] = utcnow) -> Pass:
    """One pass over the stored messages that have no outcome yet, oldest first.

    Held messages whose time has come are taken up first, in the order they
    arrived. On PostgreSQL a batch of messages is claimed in one transaction
    (rows another worker holds are skipped) and each is decided and acted on
    in a savepoint of its own, so one failing message never undoes the
    others; on SQLite, one writer, each message is a transaction, so the mail
    edge's commits never wait long behind the worker's. Stops early
    when `keep_going()` turns false (a shutdown whose grace time is over);
    what is left waits for the next pass or the next start. ``clock`` is the
    time the pass decides by (tests move it on). `on_processed` hears of each
    message once its outcome is committed.
    """
    release_due(store, clock())
    postgres = store.engine.dialect.name == "postgresql"
    size = config.worker.batch if postgres else 1
    processed, waiting, after = 0, 0, 0
    while keep_going():
        batch = _process_batch(store, config, partial(_claim_batch, after=after, size=size), clock, keep_going,
                               savepoints=postgres)
        if batch.last is None:
            break
        after = batch.last
        waiting += batch.waiting
        for one in batch.done:
            processed += 1
            on_processed(one)
    return Pass(processed, waiting)


def process_messages(store: Store, config: Config, inbound_ids: Sequence[int],
                     clock: Callable[[], dt.datetime] = utcnow,
                     parsed: Mapping[int, Submission] | None = None) -> dict[int, Processed]:
    """Process these stored messages (a group `intake ingest` has just stored) in as few transactions as may be.

    On PostgreSQL they are claimed together (rows another worker holds are
    skipped) and each gets a savepoint, as in `process_pass`. On SQLite, whose
    driver makes no reliable savepoints, they share one transaction without
    any: should one fail, that transaction is rolled back and the messages are
    done again one a transaction, so the failure is recorded alone and the
    others are processed (a failure is a bug, and rare; the redo parses again).
    Either way a transaction commits after `BATCH_SECONDS`, so a daemon beside
    never waits long for the database. The result has no entry for a message
    another worker has or had, nor for a reply left waiting for its parent.
    ``parsed``: messages parsed already, from the very bytes stored (`intake.act.pool`'s parse ahead).
    """
    postgres = store.engine.dialect.name == "postgresql"
    remaining = sorted(inbound_ids)
    results: dict[int, Processed] = {}
    while remaining:
        batch = _process_batch(store, config, partial(_claim_ids, inbound_ids=remaining), clock, lambda: True,
                               savepoints=postgres, parsed=parsed)
        if batch.redo:
            for inbound_id in batch.redo:
                alone = _process_batch(store, config, partial(_claim_ids, inbound_ids=[inbound_id]), clock,
                                       lambda: True, savepoints=postgres, parsed=parsed)
                results.update((one.inbound_id, one) for one in alone.done)
            remaining = [i for i in remaining if i > batch.redo[-1]]
            continue
        if batch.last is None:
            break
        results.update((one.inbound_id, one) for one in batch.done)
        remaining = [i for i in remaining if i > batch.last]
    return results


@dataclass
class _Batch:
    done: list[Processed] = field(default_factory=list)
    waiting: int = 0
    last: int | None = None  # the last message id claimed: the next batch starts after it
    redo: list[int] = field(default_factory=list)  # rolled back together (SQLite): do again, one at a time


BATCH_SECONDS = 0.25  # a batch commits after this long even if messages are left: answers go out promptly


def _process_batch(store: Store, config: Config, claim: Callable[[Session], list[int]],
                   clock: Callable[[], dt.datetime], keep_going: Callable[[], bool], *, savepoints: bool,
                   parsed: Mapping[int, Submission] | None = None) -> _Batch:
    """Claim messages, then decide and act on each, in one transaction; with savepoints (PostgreSQL)
    a failing message is recorded and the others kept, without (SQLite) it undoes the batch."""
    batch = _Batch()
    taken: list[int] = []
    try:
        with contextlib.ExitStack() as turns, store.session() as session, session.begin():
            claimed = claim(session)
            # The turn, when taken, is let go after the commit (SQLite: `intake.store.turns`).
            lock = _WriteLock(held=savepoints,
                              taking=lambda: turns.enter_context(turn(store.engine, poll=WORKER_POLL_SECONDS)))
            deadline = time.monotonic() + BATCH_SECONDS
            for inbound_id in claimed:
                if batch.done and (time.monotonic() > deadline or not keep_going()):
                    break  # the rest stay claimed until the commit, then wait for the next batch
                batch.last = inbound_id
                taken.append(inbound_id)
                started = time.monotonic()
                try:
                    one = _process_claimed(session, inbound_id, config, clock(), lock, savepoint=savepoints,
                                           parsed=parsed.get(inbound_id) if parsed else None)
                except OperationalError:
                    raise  # the database is busy or away: the whole batch waits for the next pass
                except Exception as exc:
                    if not savepoints:
                        raise  # the transaction is rolled back; the failure is recorded below
                    batch.done.append(_record_failure(session, inbound_id, exc))  # its savepoint is rolled back
                    _forget(session)
                    continue
                _forget(session)
                if one is _WAITING:
                    batch.waiting += 1
                elif isinstance(one, Processed):
                    batch.done.append(replace(one, ms=round((time.monotonic() - started) * 1000)))
    except OperationalError as exc:
        # The database is busy or away (a lock held too long, a dropped connection): nothing
        # was written, the messages stay unprocessed and are taken up again on the next pass.
        log.warning(logfmt(event="left_for_next_pass", after=taken[0] if taken else None, error=exc.orig or exc))
        return _Batch()
    except Exception as exc:  # without savepoints: a bug; keep the message, record why, go on
        if not taken:
            raise
        if len(taken) > 1:
            return _Batch(last=taken[-1], redo=taken)  # which one failed is found by doing them singly
        batch.done = [_mark_failed(store, taken[0], exc)]
    return batch


def _forget(session: Session) -> None:
    """Write out one message's changes and let go of what it loaded, before the next message of the batch.

    Each flush looks at every object the session holds: kept from message to
    message, a batch would cost more with each one. Nothing of one message is
    needed by the next; what it wrote is in the transaction.
    """
    session.flush()
    session.expunge_all()
    session.info.clear()


_WAITING = object()  # a reply whose parent message is still unprocessed: left pending for a later pass


def _inbound_row(session: Session, inbound_id: int) -> InboundMessage | None:
    """A stored message's row without its bytes, read by a plain select and put in the session as if loaded.

    A third of the cost of `Session.get`, which is made for more than one
    table's row. Its bytes are read on their own (`load_raw`).
    """
    if session.identity_key(InboundMessage, inbound_id) in session.identity_map:
        return session.get(InboundMessage, inbound_id)
    found = plain_connection(session).execute(_READ_INBOUND, {"inbound_id": inbound_id}).mappings().first()
    if found is None:
        return None
    row = InboundMessage(**found)
    make_transient_to_detached(row)  # its columns count as loaded, none as changed; `raw` loads if asked for
    session.add(row)
    return row


_INBOUND = Base.metadata.tables[InboundMessage.__tablename__]
_READ_INBOUND = select(_INBOUND).where(_INBOUND.c.id == bindparam("inbound_id"))


def _process_claimed(session: Session, inbound_id: int, config: Config, now: dt.datetime, lock: _WriteLock, *,
                     savepoint: bool, parsed: Submission | None = None) -> Processed | object | None:
    row = _inbound_row(session, inbound_id)
    if row is None or row.outcome is not None:
        return None
    raw = load_raw(session, inbound_id)
    submission = parsed if parsed is not None else parse(raw, config.case_types.forms, row.envelope_sender,
                                                         config.limits)
    if _answers_unprocessed(session, submission, row.id):
        return _WAITING
    # Before the lock too: with sender_auth = "dkim" this asks DNS, and a slow resolver must not
    # keep the mail edge from storing what arrives meanwhile (SQLite, one writer).
    verdict = authenticate(raw, submission, config.security)
    if not savepoint:
        if not lock.take(session, inbound_id):
            return None
        return decide_and_act(session, row, config, now, verdict, submission=submission, raw=raw)
    with session.begin_nested():
        return decide_and_act(session, row, config, now, verdict, submission=submission, raw=raw)


class _WriteLock:
    """The write lock of a batch's transaction on SQLite, which has no row locks: taken once, by the first message.

    The claim reads without a lock, and the first message is parsed before
    the lock is taken, so the mail edge never waits behind that parse. The
    lock is taken by an update of that message that succeeds only while it is
    still unprocessed (`intake ingest` beside `intake serve` may have done it
    meanwhile). From then on nobody else writes until the commit, and each
    later message is read (`_process_claimed`) after the lock, so one another
    process did first is seen as done and left alone. Before the update the
    daemon's writers' turn is taken (``taking``), so the mail edge's commit
    is told the moment this one ends. On PostgreSQL the claimed rows are
    locked `FOR UPDATE` already (``held``).
    """

    def __init__(self, *, held: bool, taking: Callable[[], object] = lambda: None) -> None:
        self._held = held
        self._taking = taking

    def take(self, session: Session, inbound_id: int) -> bool:
        if self._held:
            return True
        self._taking()
        taken = plain_connection(session).execute(_TAKE, {"taken_id": inbound_id})
        self._held = True  # even when no row matched: the update took the lock
        return bool(taken.rowcount)  # type: ignore[attr-defined]


# The lock is taken by writing: an update that changes nothing but fails for a message someone processed.
_TAKE = (update(InboundMessage).where(InboundMessage.id == bindparam("taken_id"), InboundMessage.outcome.is_(None))
         .values(outcome=None))


def _answers_unprocessed(session: Session, submission: Submission, inbound_id: int) -> bool:
    """A reply to a message that arrived before it and has no outcome yet (another worker has it).

    It waits, rather than becoming a new case because its thread is not known
    yet. Only earlier messages count, so two messages naming each other cannot
    wait for each other.
    """
    message = submission.message
    if message is None:
        return False
    wanted = {*message.references, *([message.in_reply_to] if message.in_reply_to else [])}
    if not wanted:
        return False
    return plain_connection(session).execute(_UNPROCESSED_EARLIER,
                                             {"wanted": sorted(wanted), "before": inbound_id}).first() is not None


_UNPROCESSED_EARLIER = select(InboundMessage.id).where(
    InboundMessage.message_id.in_(bindparam("wanted", expanding=True)), InboundMessage.outcome.is_(None),
    InboundMessage.id < bindparam("before")).limit(1)


def release_due(store: Store, now: dt.datetime) -> int:
    """Held messages whose time has come are made pending again; the loop then takes them in arrival order.

    Once, with several workers: the held rows are claimed (rows another worker
    is releasing are skipped), and a message is made pending only while it is
    still held, so none is ever processed twice.
    """
    with store.session() as session, session.begin():
        query = select(HeldMessage).where(HeldMessage.status == HeldStatus.HELD.value, HeldMessage.until <= now)
        if session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        due = session.scalars(query).all()
        for entry in due:
            entry.status, entry.released = HeldStatus.RELEASED.value, now
        if due:
            session.execute(update(InboundMessage)
                            .where(InboundMessage.id.in_([entry.inbound_message_id for entry in due]),
                                   InboundMessage.outcome == Outcome.HELD.value)
                            .values(outcome=None).execution_options(synchronize_session=False))
        return len(due)


def _pending_query(after: int, size: int) -> Select[Any]:
    return (select(InboundMessage.id).where(InboundMessage.outcome.is_(None), InboundMessage.id > after)
            .order_by(InboundMessage.id).limit(size))


def _claim_ids(session: Session, inbound_ids: Sequence[int]) -> list[int]:
    """Those of `inbound_ids` still unprocessed, in order, locked for this transaction on PostgreSQL."""
    return _locked(session, select(InboundMessage.id).where(InboundMessage.id.in_(inbound_ids),
                                                            InboundMessage.outcome.is_(None))
                   .order_by(InboundMessage.id))


def _claim_batch(session: Session, after: int, size: int) -> list[int]:
    """The next `size` unprocessed messages after `after`, locked for this transaction on PostgreSQL."""
    return _locked(session, _pending_query(after, size))


def _locked(session: Session, query: Select[Any]) -> list[int]:
    """The message ids `query` selects; on PostgreSQL locked for the transaction, skipping rows another holds."""
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    return list(session.scalars(query))


def decide_and_act(session: Session, row: InboundMessage, config: Config, now: dt.datetime,
                   verdict: Verdict | None = None, *, ignore_case_rate: bool = False,
                   submission: Submission | None = None, raw: bytes | None = None) -> Processed:
    """Parse (unless already parsed), authenticate (unless ``verdict`` is given: a person vouched for the
    sender), decide and act.

    ``ignore_case_rate``: a person released a held message, to be processed now. ``raw``: the
    message's bytes when the caller has them already (`load_raw`).
    """
    raw = row.raw if raw is None else raw
    if submission is None:
        submission = parse(raw, config.case_types.forms, row.envelope_sender, config.limits)
    if verdict is None:
        verdict = authenticate(raw, submission, config.security)
    policy = replace(policy_for(config, now), ignore_case_rate=ignore_case_rate)
    decision = decide(submission, views_over(session), policy, verdict)
    return act(decision, Acting(session, row, submission, config, now))


def _mark_failed(store: Store, inbound_id: int, exc: Exception) -> Processed:
    with store.session() as session, session.begin():
        return _record_failure(session, inbound_id, exc)


def _record_failure(session: Session, inbound_id: int, exc: Exception) -> Processed:
    """Record an unexpected error on the message (kept for `intake replay`), in the open transaction."""
    reason = f"internal error, kept for replay: {type(exc).__name__}: {exc}"
    row = session.get(InboundMessage, inbound_id)
    if row is not None and row.outcome is None:
        row.outcome = Outcome.FAILED.value
        row.reasons = [reason]
        row.error = "".join(traceback.format_exception(exc))
        row.processed = utcnow()
    return Processed(inbound_id, Outcome.FAILED, (reason,))


def replay(store: Store, config: Config, inbound_ids: Sequence[int]) -> list[Processed]:
    """Process failed messages again (after the cause is fixed)."""
    with store.session() as session, session.begin():
        session.execute(update(InboundMessage).where(InboundMessage.id.in_(inbound_ids),
                                                     InboundMessage.outcome == Outcome.FAILED.value)
                        .values(outcome=None).execution_options(synchronize_session=False))
    done = process_messages(store, config, inbound_ids)
    return [done[i] for i in dict.fromkeys(inbound_ids) if i in done]


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
