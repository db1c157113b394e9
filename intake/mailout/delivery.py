"""Delivering the outbox: the last step of the flow.

Replies are queued as rows in the same transaction as their cause (see
`intake.act.worker`); this module hands them on, one row at a time. With an SMTP
relay configured it sends through the relay with the configured From address
as envelope sender, so bounces come back to intake (see `intake.act.bounces`);
without one the sink is a local Maildir, where any mail client or `ls` can read
what intake sent.

Rows go through three short steps, a batch at a time: claim them in one
transaction (a lease: `next_attempt` is pushed forward by a conditional UPDATE
that returns the rows it took, with SKIP LOCKED on PostgreSQL, so a second
daemon or `intake ingest` running beside the daemon skips them, and no database
lock is held while talking to the relay), attempt each, and record all the
results in one transaction. A crash loses nothing. The Maildir takes batches
of many rows, since a message written again is skipped by its name; the relay
takes one row at a time, so a crash sends at most the one message in flight
again, once its lease runs out.

A temporary failure (the relay is unreachable, a 4xx reply, a dropped
connection, a refused login) leaves the row `retrying` with exponential
backoff until the policy's give-up time; a permanent one (a 5xx reply about the
message or its recipients) marks it `failed` with the server's words. A row all
of whose recipients are bouncing contacts is `suppressed` without being sent.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
import smtplib
import ssl
import uuid
from collections.abc import Callable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Protocol

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from intake.config import Config, DeliveryPolicy, RelayConfig
from intake.credentials import SecretUnavailable, read_secret
from intake.logs import logfmt
from intake.mailout.signing import dkim_signed
from intake.store.database import Store
from intake.store.models import Contact, OutboundMessage, utcnow
from routing.states import OutboxStatus

__all__ = ["DeliveryFailure", "PermanentFailure", "TemporaryFailure", "deliver_pending", "deliver_to_maildir",
           "next_due", "open_relay_session", "retry_delay"]

log = logging.getLogger("intake.mailout.delivery")

DUE_STATUSES = (OutboxStatus.QUEUED.value, OutboxStatus.RETRYING.value)
SUPPRESSED_BOUNCING = "recipient is bouncing; not mailed until cleared"
# How long a claimed row is left alone by other deliverers, by default ([outgoing] claim_seconds);
# after a crash the message in flight is sent again once this has passed.
LEASE = dt.timedelta(seconds=DeliveryPolicy.claim_seconds)


class DeliveryFailure(Exception):
    """A message could not be handed on; the text is what the sink or relay said."""


class TemporaryFailure(DeliveryFailure):
    """Worth trying again later: a 4xx reply, a network problem, a refused login."""


class RelayUnavailable(TemporaryFailure):
    """The relay cannot be reached at all; the rest of this pass waits too."""


class PermanentFailure(DeliveryFailure):
    """The relay refused the message itself with a 5xx reply; trying again would not help."""


class Sink(Protocol):
    """Where outgoing mail is handed; raises a DeliveryFailure, or returns a note for the row.

    ``batch`` is how many rows are claimed, attempted and then recorded together.
    """

    batch: ClassVar[int]

    def send(self, sender: str, recipients: list[str], raw: bytes, message_id: str) -> str | None: ...

    def close(self) -> None: ...


# --- the sinks -------------------------------------------------------------------


def deliver_to_maildir(raw: bytes, maildir: Path, message_id: str,
                       read_in_cur: AbstractSet[str] | None = None) -> str | None:
    """Add one message to the Maildir's `new/`, named by its Message-ID; None when it is there already.

    The name is stable, so a message delivered again (a daemon killed between
    the write and recording it as sent) is skipped, not written twice: in
    `new/`, or in `cur/` where a mail client moved it (with `:2,` flags added).
    Written to `tmp/` and linked into `new/`, as the Maildir format asks.
    ``read_in_cur`` is what `maildir_ready` found in `cur/`, when the caller
    (a batch of deliveries) made and listed the folders already.
    """
    if read_in_cur is None:
        read_in_cur = maildir_ready(maildir)
    name = "intake." + hashlib.sha256(message_id.encode("utf-8", "surrogateescape")).hexdigest()[:40]
    if name in read_in_cur or (maildir / "new" / name).exists():
        return None
    temporary = maildir / "tmp" / f"{name}.{os.getpid()}.{uuid.uuid4().hex[:8]}"
    temporary.write_bytes(raw)
    try:
        os.link(temporary, maildir / "new" / name)
    except FileExistsError:
        return None  # another process delivered it at the same moment
    finally:
        temporary.unlink()
    return name


def maildir_ready(maildir: Path) -> frozenset[str]:
    """Make the Maildir's folders if need be; the names of the messages in `cur/`, without their flags."""
    for sub in ("tmp", "new", "cur"):
        (maildir / sub).mkdir(parents=True, exist_ok=True)
    with os.scandir(maildir / "cur") as entries:
        return frozenset(entry.name.partition(":")[0] for entry in entries)


@dataclass
class MaildirSink:
    maildir: Path
    # A message written again after a crash is skipped by its name, so a whole batch
    # can be recorded at once: nothing is lost or duplicated if it is claimed again.
    batch: ClassVar[int] = 100
    # The folders made and `cur/` listed once for the sink (one delivery pass), not for every message.
    _read_in_cur: frozenset[str] | None = field(default=None, init=False, repr=False)

    def send(self, sender: str, recipients: list[str], raw: bytes, message_id: str) -> str | None:
        try:
            if self._read_in_cur is None:
                self._read_in_cur = maildir_ready(self.maildir)
            written = deliver_to_maildir(raw, self.maildir, message_id, self._read_in_cur)
        except OSError as exc:
            self._read_in_cur = None  # a folder removed meanwhile is made again on the next try
            raise TemporaryFailure(f"cannot write to the Maildir {self.maildir}: {exc}") from exc
        return None if written else "already in the Maildir (delivered before)"

    def close(self) -> None:
        pass


def _crlf(raw: bytes) -> bytes:
    """SMTP lines end in CRLF; smtplib converts str but sends bytes as they are."""
    return raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


class RelaySink:
    """One SMTP session with the relay, opened on first use and reused for the whole pass."""

    # A message sent again reaches a person: each row is recorded as soon as it is sent,
    # so a crash resends at most the one in flight.
    batch: ClassVar[int] = 1

    def __init__(self, relay: RelayConfig) -> None:
        self.relay = relay
        self._smtp: smtplib.SMTP | None = None
        self._unavailable: RelayUnavailable | None = None

    def send(self, sender: str, recipients: list[str], raw: bytes, message_id: str) -> str | None:
        smtp = self._session()
        # SMTPException is an OSError, so the relay's replies are told apart first.
        try:
            refused = smtp.sendmail(sender, recipients, _crlf(raw))
        except smtplib.SMTPRecipientsRefused as exc:
            raise _refusal(exc.recipients) from exc
        except smtplib.SMTPResponseException as exc:
            if smtp.sock is None:  # the relay closed the session (421); open a new one next time
                self._drop()
            raise _by_code(exc.smtp_code, _reply(exc)) from exc
        except OSError as exc:  # SMTPServerDisconnected, a timeout, a reset connection
            self._drop()
            raise TemporaryFailure(f"connection to the relay lost: {_describe(exc)}") from exc
        return _partly_refused(refused)

    def _session(self) -> smtplib.SMTP:
        if self._unavailable is not None:
            raise self._unavailable
        if self._smtp is None:
            try:
                self._smtp = open_relay_session(self.relay)
            except RelayUnavailable as exc:
                self._unavailable = exc
                raise
        return self._smtp

    def _drop(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is not None:
            try:
                smtp.close()
            except OSError:
                pass

    def close(self) -> None:
        if self._smtp is not None:
            try:
                self._smtp.quit()
            except OSError:  # SMTPException included
                pass
        self._drop()


def open_relay_session(relay: RelayConfig) -> smtplib.SMTP:
    """Connect, secure and log in as configured; any failure is a RelayUnavailable."""
    where = f"relay {relay.host}:{relay.port}"
    try:
        smtp = _connect(relay)
    except OSError as exc:  # SMTPException included
        raise RelayUnavailable(f"cannot reach {where}: {_describe(exc)}") from exc
    try:
        if relay.security == "starttls":
            smtp.starttls(context=ssl.create_default_context())
        if relay.username:
            smtp.login(relay.username, relay_password(relay))
    except (OSError, DeliveryFailure) as exc:
        smtp.close()
        raise RelayUnavailable(f"{where}: {_describe(exc)}") from exc
    return smtp


def _connect(relay: RelayConfig) -> smtplib.SMTP:
    if relay.security == "tls":
        return smtplib.SMTP_SSL(relay.host, relay.port, timeout=relay.timeout_seconds,
                                context=ssl.create_default_context())
    return smtplib.SMTP(relay.host, relay.port, timeout=relay.timeout_seconds)


def relay_password(relay: RelayConfig) -> str:
    """The password from the environment variable or file the configuration names."""
    try:
        return read_secret(relay.password_env, relay.password_file, env_setting="relay_password_env",
                           file_setting="relay_password_file")
    except SecretUnavailable as exc:
        raise TemporaryFailure(f"relay password: {exc}") from exc


def _reply(exc: smtplib.SMTPResponseException) -> str:
    text = exc.smtp_error.decode("utf-8", "replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
    return f"{exc.smtp_code} {' '.join(text.split())}"


def _by_code(code: int, text: str) -> DeliveryFailure:
    return PermanentFailure(text) if 500 <= code < 600 else TemporaryFailure(text)


def _refusal(refused: dict[str, tuple[int, bytes]]) -> DeliveryFailure:
    """Every recipient was refused: permanent only when every refusal is a 5xx."""
    replies = "; ".join(f"{address}: {code} {message.decode('utf-8', 'replace')}"
                        for address, (code, message) in refused.items())
    permanent = all(500 <= code < 600 for code, _ in refused.values())
    return PermanentFailure(replies) if permanent else TemporaryFailure(replies)


def _partly_refused(refused: dict[str, tuple[int, bytes]]) -> str | None:
    if not refused:
        return None
    return "sent, but refused for " + "; ".join(f"{address}: {code} {message.decode('utf-8', 'replace')}"
                                                for address, (code, message) in refused.items())


def _describe(exc: BaseException) -> str:
    if isinstance(exc, smtplib.SMTPResponseException):
        return _reply(exc)
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def sink_for(config: Config) -> Sink:
    return RelaySink(config.relay) if config.relay else MaildirSink(config.outgoing_maildir)


# --- the outbox ------------------------------------------------------------------


def deliver_pending(store: Store, config: Config, now: dt.datetime | None = None) -> int:
    """Attempt every due message (queued, or retrying and due by `now`); returns how many were sent."""
    # The real clock is read again for each attempt: a long pass must not give a
    # row a lease (or a retry time) that has already run out.
    def clock() -> dt.datetime:
        return now or utcnow()

    sink = sink_for(config)
    delivered = 0
    try:
        lease = dt.timedelta(seconds=config.delivery.claim_seconds)
        while (batch := _claim_batch(store, clock(), sink.batch, lease)) is not None:
            delivered += _deliver_batch(store, sink, config, batch, clock) if batch else 0
    finally:
        sink.close()
    return delivered


def next_due(store: Store) -> dt.datetime | None:
    """When `deliver_pending` next has work: the earliest retry (or lease end); None when nothing waits.

    A queued row never attempted is due at once, so its creation time (in the
    past) is returned for it.
    """
    with store.session() as session:
        due_at = func.coalesce(OutboundMessage.next_attempt, OutboundMessage.created)
        return session.scalars(select(func.min(due_at)).where(OutboundMessage.status.in_(DUE_STATUSES))).one()


def retry_delay(policy: DeliveryPolicy, attempts: int) -> dt.timedelta:
    """The wait after the `attempts`-th failed attempt: doubling from the first, capped at the maximum."""
    seconds = min(policy.retry_first_seconds * 2 ** max(attempts - 1, 0), policy.retry_max_seconds)
    return dt.timedelta(seconds=seconds)


def _due(now: dt.datetime) -> tuple[ColumnElement[bool], ColumnElement[bool]]:
    return (OutboundMessage.status.in_(DUE_STATUSES),
            or_(OutboundMessage.next_attempt.is_(None), OutboundMessage.next_attempt <= now))


def _due_ids(store: Store, now: dt.datetime) -> list[int]:
    with store.session() as session:
        return list(session.scalars(select(OutboundMessage.id).where(*_due(now)).order_by(OutboundMessage.id)))


@dataclass(frozen=True)
class Claimed:
    """A row leased to this deliverer, with what sending it and recording the result need."""

    id: int
    message_id: str
    raw: bytes
    recipients: list[str]
    attempts: int
    created: dt.datetime
    leased_until: dt.datetime


@dataclass(frozen=True)
class Attempt:
    """What became of one claimed row: sent (with the sink's note), failed, or handed back unattempted."""

    row: Claimed
    at: dt.datetime
    attempted: bool = True
    note: str | None = None
    failure: DeliveryFailure | None = None

    @property
    def sent(self) -> bool:
        return self.attempted and self.failure is None


def _claim_batch(store: Store, now: dt.datetime, limit: int, lease: dt.timedelta) -> list[Claimed] | None:
    """Lease up to `limit` due rows in one transaction, oldest first; None when no row is due.

    Rows with no one to mail are settled here (failed, or suppressed), so the
    list may be empty while more rows are due.

    On PostgreSQL the rows are locked with SKIP LOCKED while they are leased, so
    two deliverers never take the same row; everywhere the lease is a
    conditional UPDATE that returns the rows it took, so a row another
    deliverer leased in the meantime is left to it.
    """
    with store.session() as session, session.begin():
        query = select(OutboundMessage).where(*_due(now)).order_by(OutboundMessage.id).limit(limit)
        if session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        rows = session.scalars(query).all()
        if not rows:
            return None
        bouncing = _bouncing(session, [address for row in rows for address in row.recipients or ()])
        mailable = [(row, recipients) for row in rows if (recipients := _settle_unmailable(row, bouncing))]
        if not mailable:
            return []
        until = now + lease
        leased = set(session.scalars(
            update(OutboundMessage).where(OutboundMessage.id.in_([row.id for row, _ in mailable]), *_due(now))
            .values(next_attempt=until).returning(OutboundMessage.id).execution_options(synchronize_session=False)))
        return [Claimed(row.id, row.message_id, row.raw, recipients, row.attempts, row.created, until)
                for row, recipients in mailable if row.id in leased]


def _settle_unmailable(row: OutboundMessage, bouncing: set[str]) -> list[str]:
    """The row's recipients to mail; with none, the row is marked failed (no recipients) or suppressed."""
    if not row.recipients:
        row.status, row.last_error, row.next_attempt = OutboxStatus.FAILED.value, "no recipients", None
        return []
    recipients = [address for address in row.recipients if address.lower() not in bouncing]
    if not recipients:
        row.status, row.last_error, row.next_attempt = OutboxStatus.SUPPRESSED.value, SUPPRESSED_BOUNCING, None
        log.info(logfmt(event="suppressed", outbound=row.id, message_id=row.message_id, reason=SUPPRESSED_BOUNCING))
    return recipients


def _bouncing(session: Session, recipients: list[str]) -> set[str]:
    """Those of the recipients (lowercased) that are contacts marked bouncing, in one query."""
    lowered = sorted({address.lower() for address in recipients})
    if not lowered:
        return set()
    return set(session.scalars(select(func.lower(Contact.email))
                               .where(func.lower(Contact.email).in_(lowered), Contact.bouncing.is_(True))))


def _deliver_batch(store: Store, sink: Sink, config: Config, batch: list[Claimed],
                   clock: Callable[[], dt.datetime]) -> int:
    """Attempt each claimed row, then record every result in one transaction; how many were sent.

    A row whose lease is half gone before its turn (a slow relay) is not
    attempted but handed back, so nothing is sent once another deliverer could take it.
    """
    attempts = []
    for row in batch:
        at = clock()
        fresh = at < row.leased_until - dt.timedelta(seconds=config.delivery.claim_seconds) / 2
        attempts.append(_attempt(sink, config, row, at) if fresh else Attempt(row, at, attempted=False))
    _record(store, attempts, config.delivery)
    return sum(attempt.sent for attempt in attempts)


def _attempt(sink: Sink, config: Config, row: Claimed, at: dt.datetime) -> Attempt:
    try:
        note = sink.send(config.from_address, row.recipients, dkim_signed(row.raw, config.dkim_signing), row.message_id)
    except DeliveryFailure as exc:
        return Attempt(row, at, failure=exc)
    except Exception as exc:  # a bug: keep the message, say why, go on with the others
        log.exception(logfmt(event="send_error", outbound=row.id, message_id=row.message_id))
        return Attempt(row, at, failure=TemporaryFailure(f"internal error: {_describe(exc)}"))
    return Attempt(row, at, note=note)


def _record(store: Store, attempts: list[Attempt], policy: DeliveryPolicy) -> None:
    """Every result of a batch in one transaction: sent, retrying or failed; unattempted rows handed back."""
    results = [_result(attempt, policy) for attempt in attempts if attempt.attempted]
    handed_back = [attempt.row for attempt in attempts if not attempt.attempted]
    with store.session() as session, session.begin():
        if results:
            session.execute(update(OutboundMessage), results)  # by primary key, one executemany
        if handed_back:  # due again at once, unless another deliverer has taken it since
            session.execute(update(OutboundMessage)
                            .where(OutboundMessage.id.in_([row.id for row in handed_back]),
                                   OutboundMessage.next_attempt == handed_back[0].leased_until)
                            .values(next_attempt=None).execution_options(synchronize_session=False))


def _result(attempt: Attempt, policy: DeliveryPolicy) -> dict[str, object]:
    row, attempts = attempt.row, attempt.row.attempts + 1
    if attempt.failure is None:
        return {"id": row.id, "status": OutboxStatus.SENT.value, "sent": attempt.at, "next_attempt": None,
                "last_error": attempt.note, "attempts": attempts}
    exc = attempt.failure
    status, next_attempt = _after_failure(row.created, attempts, exc, policy, attempt.at)
    error = str(exc)
    if status == OutboxStatus.FAILED and isinstance(exc, TemporaryFailure):
        error = _gave_up(row.created, attempts, error, attempt.at)
    log.warning(logfmt(event="send_failed", outbound=row.id, message_id=row.message_id, status=status,
                       attempts=attempts, error=error))
    return {"id": row.id, "status": status, "next_attempt": next_attempt, "last_error": error, "attempts": attempts}


def _after_failure(created: dt.datetime, attempts: int, exc: DeliveryFailure, policy: DeliveryPolicy,
                   now: dt.datetime) -> tuple[str, dt.datetime | None]:
    if isinstance(exc, PermanentFailure):
        return OutboxStatus.FAILED.value, None
    if now - created > dt.timedelta(hours=policy.give_up_hours):
        return OutboxStatus.FAILED.value, None
    return OutboxStatus.RETRYING.value, now + retry_delay(policy, attempts)


def _gave_up(created: dt.datetime, attempts: int, error: str, now: dt.datetime) -> str:
    hours = round((now - created).total_seconds() / 3600, 1)
    return f"gave up after {attempts} attempts over {hours:g} hours: {error}"
