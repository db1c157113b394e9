"""Delivering the outbox: the last step of the flow.

Replies are queued as rows in the same transaction as their cause (see
`intake.act.worker`); this module hands them on, one row at a time. With an SMTP
relay configured it sends through the relay with the configured From address
as envelope sender, so bounces come back to intake (see `intake.act.bounces`);
without one the sink is a local Maildir, where any mail client or `ls` can read
what intake sent.

Each row goes through three short steps: claim it (a lease: `next_attempt` is
pushed forward by a conditional UPDATE, so a second daemon or `intake ingest`
running beside the daemon skips it, and no database lock is held while talking
to the relay), attempt it, and record the result in its own transaction. A
crash loses nothing: at most the one message in flight is sent again, once its
lease runs out.

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
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

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
# How long a claimed row is left alone by other deliverers; after a crash the
# message in flight is sent again once this has passed.
LEASE = dt.timedelta(minutes=10)


class DeliveryFailure(Exception):
    """A message could not be handed on; the text is what the sink or relay said."""


class TemporaryFailure(DeliveryFailure):
    """Worth trying again later: a 4xx reply, a network problem, a refused login."""


class RelayUnavailable(TemporaryFailure):
    """The relay cannot be reached at all; the rest of this pass waits too."""


class PermanentFailure(DeliveryFailure):
    """The relay refused the message itself with a 5xx reply; trying again would not help."""


class Sink(Protocol):
    """Where outgoing mail is handed; raises a DeliveryFailure, or returns a note for the row."""

    def send(self, sender: str, recipients: list[str], raw: bytes, message_id: str) -> str | None: ...

    def close(self) -> None: ...


# --- the sinks -------------------------------------------------------------------


def deliver_to_maildir(raw: bytes, maildir: Path, message_id: str) -> str | None:
    """Add one message to the Maildir's `new/`, named by its Message-ID; None when it is there already.

    The name is stable, so a message delivered again (a daemon killed between
    the write and recording it as sent) is skipped, not written twice: in
    `new/`, or in `cur/` where a mail client moved it (with `:2,` flags added).
    Written to `tmp/` and linked into `new/`, as the Maildir format asks.
    """
    for sub in ("tmp", "new", "cur"):
        (maildir / sub).mkdir(parents=True, exist_ok=True)
    name = "intake." + hashlib.sha256(message_id.encode("utf-8", "surrogateescape")).hexdigest()[:40]
    if (maildir / "new" / name).exists() or any((maildir / "cur").glob(name + ":*")) \
            or (maildir / "cur" / name).exists():
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


@dataclass
class MaildirSink:
    maildir: Path

    def send(self, sender: str, recipients: list[str], raw: bytes, message_id: str) -> str | None:
        try:
            written = deliver_to_maildir(raw, self.maildir, message_id)
        except OSError as exc:
            raise TemporaryFailure(f"cannot write to the Maildir {self.maildir}: {exc}") from exc
        return None if written else "already in the Maildir (delivered before)"

    def close(self) -> None:
        pass


def _crlf(raw: bytes) -> bytes:
    """SMTP lines end in CRLF; smtplib converts str but sends bytes as they are."""
    return raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


class RelaySink:
    """One SMTP session with the relay, opened on first use and reused for the whole pass."""

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
    # The real clock is read again for each row: a long pass must not give a
    # row a lease (or a retry time) that has already run out.
    def clock() -> dt.datetime:
        return now or utcnow()

    sink = sink_for(config)
    delivered = 0
    try:
        for outbound_id in _due_ids(store, clock()):
            delivered += _deliver_one(store, sink, config, outbound_id, clock())
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


def _deliver_one(store: Store, sink: Sink, config: Config, outbound_id: int, now: dt.datetime) -> int:
    """Claim, attempt and record one row; 1 when it was sent."""
    claimed = _claim(store, outbound_id, now)
    if claimed is None:
        return 0
    row, recipients = claimed
    try:
        note = sink.send(config.from_address, recipients, dkim_signed(row.raw, config.dkim_signing), row.message_id)
    except DeliveryFailure as exc:
        _record_failure(store, row, exc, config.delivery, now)
        return 0
    except Exception as exc:  # a bug: keep the message, say why, go on with the others
        log.exception(logfmt(event="send_error", outbound=row.id, message_id=row.message_id))
        _record_failure(store, row, TemporaryFailure(f"internal error: {_describe(exc)}"), config.delivery, now)
        return 0
    _record_sent(store, row.id, note, now)
    return 1


def _claim(store: Store, outbound_id: int, now: dt.datetime) -> tuple[OutboundMessage, list[str]] | None:
    """Take a lease on a due row; None when it is not due, another deliverer has it, or it was suppressed."""
    with store.session() as session, session.begin():
        row = session.get(OutboundMessage, outbound_id)
        if row is None or row.status not in DUE_STATUSES or (row.next_attempt and row.next_attempt > now):
            return None  # done meanwhile, or another deliverer holds it
        if not row.recipients:
            row.status, row.last_error, row.next_attempt = OutboxStatus.FAILED.value, "no recipients", None
            return None
        recipients = _mailable(session, list(row.recipients))
        if not recipients:
            row.status, row.last_error, row.next_attempt = OutboxStatus.SUPPRESSED.value, SUPPRESSED_BOUNCING, None
            log.info(logfmt(event="suppressed", outbound=row.id, message_id=row.message_id, reason=SUPPRESSED_BOUNCING))
            return None
        leased = session.execute(update(OutboundMessage).where(OutboundMessage.id == outbound_id, *_due(now))
                                 .values(next_attempt=now + LEASE).execution_options(synchronize_session=False))
        if leased.rowcount != 1:  # type: ignore[attr-defined]
            return None
        session.expunge(row)
        return row, recipients


def _mailable(session: Session, recipients: list[str]) -> list[str]:
    """The recipients that are not contacts marked bouncing."""
    lowered = [address.lower() for address in recipients]
    bouncing = set(session.scalars(select(func.lower(Contact.email))
                                   .where(func.lower(Contact.email).in_(lowered), Contact.bouncing.is_(True))))
    return [address for address in recipients if address.lower() not in bouncing]


def _record_sent(store: Store, outbound_id: int, note: str | None, now: dt.datetime) -> None:
    with store.session() as session, session.begin():
        row = session.get(OutboundMessage, outbound_id)
        assert row is not None
        row.status, row.sent, row.next_attempt, row.last_error = OutboxStatus.SENT.value, now, None, note
        row.attempts += 1


def _record_failure(store: Store, claimed: OutboundMessage, exc: DeliveryFailure, policy: DeliveryPolicy,
                    now: dt.datetime) -> None:
    with store.session() as session, session.begin():
        row = session.get(OutboundMessage, claimed.id)
        assert row is not None
        row.attempts += 1
        row.last_error = str(exc)
        row.status, row.next_attempt = _after_failure(row, exc, policy, now)
        if row.status == OutboxStatus.FAILED and isinstance(exc, TemporaryFailure):
            row.last_error = _gave_up(row, now)
        log.warning(logfmt(event="send_failed", outbound=row.id, message_id=row.message_id, status=row.status,
                           attempts=row.attempts, error=row.last_error))


def _after_failure(row: OutboundMessage, exc: DeliveryFailure, policy: DeliveryPolicy,
                   now: dt.datetime) -> tuple[str, dt.datetime | None]:
    if isinstance(exc, PermanentFailure):
        return OutboxStatus.FAILED.value, None
    if now - row.created > dt.timedelta(hours=policy.give_up_hours):
        return OutboxStatus.FAILED.value, None
    return OutboxStatus.RETRYING.value, now + retry_delay(policy, row.attempts)


def _gave_up(row: OutboundMessage, now: dt.datetime) -> str:
    hours = round((now - row.created).total_seconds() / 3600, 1)
    return f"gave up after {row.attempts} attempts over {hours:g} hours: {row.last_error}"
