"""The SMTP/LMTP edge: mail in over the network, stored raw before the 250.

Where it sits in the flow: first. A message is accepted only when its raw
bytes are committed by `intake.mailin.accept`; anything that goes wrong
before that answers 451 so the sending server keeps the message and tries
again. Sessions that finish DATA at the same time share one commit
(`intake.mailin.group_commit`). The only decisions made here are the cheap and certain ones: an unknown
recipient (550 at RCPT), too many recipients in one transaction (452), too
many sessions at once (421 on connecting) and a message over the size limit
(552). Nothing is stored for any of them: the sender's own server tells them. Everything
else is decided once, by the worker, the same for SMTP and IMAP.
"""
from __future__ import annotations

import asyncio
import logging
import socket
import ssl
import weakref
from collections.abc import Callable
from typing import AnyStr

from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import SMTP, Envelope, Session

from intake.config import Config, SmtpConfig
from intake.logs import logfmt
from intake.mailin.accept import Stored
from intake.mailin.group_commit import GroupCommit
from intake.store.database import Store

log = logging.getLogger("intake.mailin.smtp")

NO_SUCH_USER = "550 5.1.1 <{address}>: no such user here"
RECIPIENT_OK = "250 2.1.5 OK"
MESSAGE_TOO_BIG = "552 5.3.4 Message size exceeds fixed limit"
TRY_AGAIN_LATER = "451 4.3.0 Temporary failure, please try again later"
SHUTTING_DOWN = "421 4.3.2 Service shutting down, please try again later"
TOO_MANY_SESSIONS = "421 4.7.0 Too many connections, please try again later"
TOO_MANY_RECIPIENTS = "452 4.5.3 Too many recipients"
SOURCE_LIMIT = 200


def is_support_address(address: str, support_addresses: tuple[str, ...]) -> bool:
    """A configured support address, in any case, or a plus-address of one (`support+x@domain`)."""
    address = address.strip().strip("<>").lower()
    if address in support_addresses:
        return True
    local, at, domain = address.rpartition("@")
    base = local.partition("+")[0]
    return bool(at) and bool(base) and f"{base}@{domain}" in support_addresses


def null_or_address(mail_from: str | None) -> str:
    """The envelope sender as stored: "" for the null sender <> (bounces, auto-replies), else the address."""
    return (mail_from or "").strip().strip("<>").strip().lower()


def source_of(session: Session, envelope: Envelope, protocol: str) -> str:
    """Where a message came from, as kept with it: peer, envelope sender and recipients."""
    peer = session.peer[0] if isinstance(session.peer, tuple) else str(session.peer)
    text = f"{protocol}:{peer} mail_from={envelope.mail_from or '<>'} rcpt={','.join(envelope.rcpt_tos)}"
    return text[:SOURCE_LIMIT]


class IntakeHandler:
    """aiosmtpd handler: RCPT is checked against the support addresses; DATA is stored, then answered."""

    def __init__(self, config: Config, store: Store, on_stored: Callable[[], None]) -> None:
        self.config = config
        self.store = store
        self.on_stored = on_stored
        self.committer = GroupCommit(store)
        self._storing: set[asyncio.Future[Stored]] = set()
        self.connections: weakref.WeakSet[SMTP] = weakref.WeakSet()
        self.sessions = 0  # connections open now, counted by IntakeSMTP/IntakeLMTP
        self._answering = 0  # DATA commands between the final dot and their reply
        self._answered = asyncio.Event()
        self._answered.set()

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope, address: str,
                          rcpt_options: list[str]) -> str:
        if not is_support_address(address, self.config.support_addresses):
            log.info(logfmt(event="rcpt_refused", peer=_peer(session), rcpt=address))
            return NO_SUCH_USER.format(address=address)
        if len(envelope.rcpt_tos) >= self.config.smtp.max_recipients:
            log.info(logfmt(event="rcpt_refused", peer=_peer(session), rcpt=address, reason="too_many_recipients"))
            return TOO_MANY_RECIPIENTS
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return RECIPIENT_OK

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self._answering += 1
        self._answered.clear()
        try:
            status = await self._store(session, envelope, "lmtp" if isinstance(server, LMTP) else "smtp")
        except asyncio.CancelledError:
            raise  # the client went away; the store, if it started, finishes on its own
        except Exception as exc:  # every failure before the commit: the sender keeps the message
            log.warning(logfmt(event="tempfail", peer=_peer(session), mail_from=envelope.mail_from,
                               error=f"{type(exc).__name__}: {exc}"))
            status = TRY_AGAIN_LATER
        finally:
            # aiosmtpd writes the reply as soon as this returns, before it next
            # yields to the loop; so once this count is zero every reply is out.
            self._answering -= 1
            if not self._answering:
                self._answered.set()
        return _per_recipient(server, envelope, status)

    async def _store(self, session: Session, envelope: Envelope, protocol: str) -> str:
        raw = envelope.original_content
        assert isinstance(raw, bytes)
        future = self.committer.store_message(raw, source_of(session, envelope, protocol),
                                              null_or_address(envelope.mail_from))
        self._storing.add(future)
        future.add_done_callback(self._stored)
        # Shielded: a client that hangs up after the final dot must not interrupt
        # a commit in progress; the stored message is then processed as usual.
        stored = await asyncio.shield(future)
        if stored.duplicate:
            log.info(logfmt(event="duplicate", peer=_peer(session), mail_from=envelope.mail_from, inbound=stored.id))
            return f"250 2.0.0 OK: already received as message {stored.id}"
        return f"250 2.0.0 OK: stored as message {stored.id}"

    def _stored(self, task: asyncio.Future[Stored]) -> None:
        self._storing.discard(task)
        if not task.cancelled() and task.exception() is None and not task.result().duplicate:
            self.on_stored()

    async def finish_storing(self) -> None:
        """Wait for every store in progress and its reply (at shutdown, after the listener stops accepting)."""
        while self._storing or not self._answered.is_set():
            await asyncio.gather(*self._storing, return_exceptions=True)
            await self._answered.wait()

    def close_connections(self) -> None:
        """Tell every connected client the service is going away, and hang up."""
        for connection in list(self.connections):
            transport = connection.transport
            if isinstance(transport, asyncio.WriteTransport) and not transport.is_closing():
                transport.write(SHUTTING_DOWN.encode() + b"\r\n")
                transport.close()

    async def handle_exception(self, error: Exception) -> str:
        log.error(logfmt(event="session_error", error=f"{type(error).__name__}: {error}"), exc_info=error)
        return TRY_AGAIN_LATER


def _peer(session: Session) -> str:
    return session.peer[0] if isinstance(session.peer, tuple) else str(session.peer)


def _per_recipient(server: SMTP, envelope: Envelope, status: str) -> str:
    """LMTP answers DATA once per accepted recipient (RFC 2033 §4.2); SMTP once."""
    if isinstance(server, LMTP):
        return "\r\n".join([status] * max(1, len(envelope.rcpt_tos)))
    return status


class _NamedSizeReplies:
    """aiosmtpd's own 552 texts carry no enhanced status code; ours do (RFC 3463 5.3.4)."""

    async def push(self, status: AnyStr) -> None:
        if isinstance(status, str) and status.startswith("552 Error:"):
            status = MESSAGE_TOO_BIG
        await super().push(status)  # type: ignore[misc]


class _CountedSessions:
    """At most `[smtp] max_sessions` connections at once; one more is told 421 and closed before the greeting."""

    event_handler: IntakeHandler
    _counted = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        handler = self.event_handler
        if self._counted:  # STARTTLS: the same session, on its new transport
            super().connection_made(transport)  # type: ignore[misc]
            return
        if handler.sessions >= handler.config.smtp.max_sessions:
            log.warning(logfmt(event="session_refused", reason="too_many_sessions", open=handler.sessions))
            if isinstance(transport, asyncio.WriteTransport):
                transport.write(TOO_MANY_SESSIONS.encode() + b"\r\n")
            transport.close()
            return
        handler.sessions += 1
        self._counted = True
        super().connection_made(transport)  # type: ignore[misc]

    def connection_lost(self, error: Exception | None) -> None:
        if self._counted:
            self._counted = False
            self.event_handler.sessions -= 1
            super().connection_lost(error)  # type: ignore[misc]


class IntakeSMTP(_CountedSessions, _NamedSizeReplies, SMTP):
    pass


class IntakeLMTP(_CountedSessions, _NamedSizeReplies, LMTP):
    pass


def tls_context(smtp: SmtpConfig) -> ssl.SSLContext | None:
    """The STARTTLS context from the configured certificate and key, or None when TLS is not configured."""
    if not (smtp.tls_cert and smtp.tls_key):
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(smtp.tls_cert), str(smtp.tls_key))
    return context


def protocol_factory(config: Config, handler: IntakeHandler) -> Callable[[], SMTP]:
    """Make one SMTP (or LMTP) protocol per connection, as `loop.create_server` wants."""
    context = tls_context(config.smtp)
    kind = IntakeLMTP if config.smtp.lmtp else IntakeSMTP
    hostname = socket.gethostname()  # not getfqdn(): that can block on DNS

    def make() -> SMTP:
        connection = kind(handler, data_size_limit=config.max_message_bytes, enable_SMTPUTF8=True,
                    hostname=hostname, ident="intake", tls_context=context,
                    require_starttls=bool(context) and config.smtp.require_tls,
                    loop=asyncio.get_running_loop())
        handler.connections.add(connection)
        return connection
    return make


async def start_listener(config: Config, handler: IntakeHandler) -> asyncio.base_events.Server:
    """Listen on the configured host and port; the server accepts until closed."""
    loop = asyncio.get_running_loop()
    server = await loop.create_server(protocol_factory(config, handler), host=config.smtp.host,
                                      port=config.smtp.port, reuse_address=True)
    log.info(logfmt(event="listening", protocol="lmtp" if config.smtp.lmtp else "smtp", host=config.smtp.host,
                    port=config.smtp.port, starttls=bool(config.smtp.tls_cert),
                    max_message_bytes=config.max_message_bytes))
    return server
