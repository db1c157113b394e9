"""The outbox delivers reliably: through a real aiosmtpd relay on 127.0.0.1, or to the Maildir sink.

The relay is a real SMTP server in a thread, as in aiosmtpd's own tests and
Mailman's; the "relay is down" case is a port nothing listens on. Time is
driven by passing `now`, so backoff and give-up are exercised without waiting.
"""
from __future__ import annotations

import collections
import datetime as dt
import email
import smtplib
import socket
import ssl
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP as SMTPServer
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session

from conftest import SUPPORT
from intake.config import Config, config_from_mapping
from intake.mailout.delivery import LEASE, SUPPRESSED_BOUNCING, deliver_pending, next_due
from intake.store.database import Store
from intake.store.models import Contact, OutboundMessage

T0 = dt.datetime(2025, 3, 4, 12, 0, tzinfo=dt.UTC)
KELLY = "kelly.kapowski@bayside.example"
ZACK = "zack.morris@bayside.example"


# --- a relay to deliver to ---------------------------------------------------------


class RecordingRelay:
    """An aiosmtpd handler that keeps every envelope it accepts."""

    def __init__(self) -> None:
        self.envelopes: list[Envelope] = []

    async def handle_DATA(self, server: SMTPServer, session: Session, envelope: Envelope) -> str:
        self.envelopes.append(envelope)
        return "250 2.0.0 Ok: queued"

    def message_ids(self) -> collections.Counter[str]:
        """How many times each Message-ID arrived."""
        return collections.Counter(str(email.message_from_bytes(e.original_content or b"")["Message-ID"]).strip("<>")
                                   for e in self.envelopes)


class RefusingRelay(RecordingRelay):
    """Answers every recipient (RCPT) or every message (DATA) with one reply."""

    def __init__(self, reply: str, at: str = "DATA") -> None:
        super().__init__()
        self.reply, self.at = reply, at

    async def handle_RCPT(self, server: SMTPServer, session: Session, envelope: Envelope, address: str,
                          options: list[str]) -> str:
        if self.at == "RCPT":
            return self.reply
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 Ok"

    async def handle_DATA(self, server: SMTPServer, session: Session, envelope: Envelope) -> str:
        return self.reply


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def running_relay(handler: RecordingRelay, port: int | None = None, **smtp_options: Any) -> Iterator[int]:
    controller = Controller(handler, hostname="127.0.0.1", port=port or free_port(), **smtp_options)
    controller.start()
    try:
        yield controller.port
    finally:
        controller.stop()


def intake_config(tmp_path: Path, relay_port: int | None = None, **outgoing: Any) -> Config:
    table: dict[str, Any] = {"maildir": str(tmp_path / "outgoing"), "retry_first_seconds": 60,
                             "retry_max_seconds": 3600, "give_up_hours": 48}
    if relay_port is not None:
        table.update(relay_host="127.0.0.1", relay_port=relay_port, relay_security="none", relay_timeout_seconds=5)
    table.update(outgoing)
    return config_from_mapping({"intake": {"support_addresses": [SUPPORT]}, "outgoing": table},
                               base=tmp_path, path=None)


# --- the outbox, as the worker fills it ------------------------------------------------


def queue_acknowledgement(store: Store, *to: str, created: dt.datetime = T0) -> str:
    """An acknowledgement in the outbox, as the worker writes it; returns its Message-ID."""
    message = EmailMessage()
    message["From"] = f"Campus Support <{SUPPORT}>"
    message["To"] = ", ".join(to)
    message["Subject"] = "[Case #1042] Received: Gradebook export fails"
    message_id = email.utils.make_msgid(idstring="intake", domain="intake.example")
    message["Message-ID"] = message_id
    message.set_content("We received your request.\n")
    with store.session() as session, session.begin():
        session.add(OutboundMessage(message_id=message_id.strip("<>"), kind="acknowledgement", recipients=list(to),
                                    subject=str(message["Subject"]), raw=message.as_bytes(), created=created))
    return message_id.strip("<>")


def outbox_messages(store: Store) -> list[OutboundMessage]:
    with store.session() as session:
        return list(session.query(OutboundMessage).order_by(OutboundMessage.id))


def outbox_message(store: Store, message_id: str) -> OutboundMessage:
    return next(m for m in outbox_messages(store) if m.message_id == message_id)


def add_contact(store: Store, address: str, *, bouncing: bool = False) -> None:
    with store.session() as session, session.begin():
        session.add(Contact(email=address, contact_type="Technical", bouncing=bouncing, bounces=3 if bouncing else 0))


# --- the Maildir sink -------------------------------------------------------------------


def test_without_a_relay_mail_goes_to_the_maildir(store: Store, tmp_path: Path) -> None:
    config = intake_config(tmp_path)
    message_id = queue_acknowledgement(store, KELLY)

    assert deliver_pending(store, config) == 1

    files = list((tmp_path / "outgoing" / "new").iterdir())
    assert [email.message_from_bytes(f.read_bytes())["Message-ID"] for f in files] == [f"<{message_id}>"]
    row = outbox_message(store, message_id)
    assert (row.status, row.attempts, row.last_error, row.next_attempt) == ("sent", 1, None, None)
    assert row.sent is not None
    assert deliver_pending(store, config) == 0


# --- the relay ---------------------------------------------------------------------------


def test_relay_gets_our_address_as_envelope_sender_and_the_row_is_sent(store: Store, tmp_path: Path) -> None:
    relay = RecordingRelay()
    with running_relay(relay) as port:
        message_id = queue_acknowledgement(store, KELLY)
        assert deliver_pending(store, intake_config(tmp_path, port), now=T0) == 1

    [envelope] = relay.envelopes
    assert envelope.mail_from == SUPPORT  # bounces come back to intake
    assert envelope.rcpt_tos == [KELLY]
    assert relay.message_ids() == {message_id: 1}
    row = outbox_message(store, message_id)
    assert (row.status, row.attempts, row.sent) == ("sent", 1, T0)
    assert not (tmp_path / "outgoing").exists()


def test_relay_down_with_five_acknowledgements_queued_delivers_each_once_when_it_is_back(
        store: Store, tmp_path: Path) -> None:
    port = free_port()  # nothing listens here yet
    config = intake_config(tmp_path, port)
    queued = [queue_acknowledgement(store, f"contact{n}@bayside.example") for n in range(5)]

    assert deliver_pending(store, config, now=T0) == 0
    rows = outbox_messages(store)
    first_retry = T0 + dt.timedelta(seconds=60)
    assert [(r.status, r.attempts, r.next_attempt) for r in rows] == [("retrying", 1, first_retry)] * 5
    assert all("cannot reach relay 127.0.0.1" in (r.last_error or "") for r in rows)
    assert next_due(store) == T0 + dt.timedelta(seconds=60)

    relay = RecordingRelay()
    with running_relay(relay, port):
        assert deliver_pending(store, config, now=T0 + dt.timedelta(seconds=30)) == 0  # not due yet
        assert deliver_pending(store, config, now=T0 + dt.timedelta(seconds=61)) == 5
        assert deliver_pending(store, config, now=T0 + dt.timedelta(hours=1)) == 0

    assert relay.message_ids() == {message_id: 1 for message_id in queued}
    assert [(r.status, r.attempts) for r in outbox_messages(store)] == [("sent", 2)] * 5
    assert next_due(store) is None


def test_451_is_retried_with_backoff_doubling_up_to_the_maximum(store: Store, tmp_path: Path) -> None:
    relay = RefusingRelay("451 4.3.0 Temporary lookup failure")
    with running_relay(relay) as port:
        config = intake_config(tmp_path, port, retry_first_seconds=60, retry_max_seconds=200)
        message_id = queue_acknowledgement(store, KELLY)
        now, waits = T0, []
        for _ in range(4):
            assert deliver_pending(store, config, now=now) == 0
            row = outbox_message(store, message_id)
            assert row.next_attempt is not None
            waits.append((row.next_attempt - now).total_seconds())
            now = row.next_attempt

    assert waits == [60, 120, 200, 200]
    assert (row.status, row.attempts, row.last_error) == ("retrying", 4, "451 4.3.0 Temporary lookup failure")


@pytest.mark.parametrize("at", ["RCPT", "DATA"])
def test_550_fails_the_message_with_the_servers_reply(store: Store, tmp_path: Path, at: str) -> None:
    reply = f"550 5.1.1 <{KELLY}>: Recipient address rejected: User unknown in virtual mailbox table"
    with running_relay(RefusingRelay(reply, at=at)) as port:
        message_id = queue_acknowledgement(store, KELLY)
        assert deliver_pending(store, intake_config(tmp_path, port), now=T0) == 0

    row = outbox_message(store, message_id)
    assert (row.status, row.attempts, row.next_attempt) == ("failed", 1, None)
    assert "550 5.1.1" in (row.last_error or "") and "User unknown in virtual mailbox table" in (row.last_error or "")


def test_temporary_failures_give_up_after_give_up_hours(store: Store, tmp_path: Path) -> None:
    with running_relay(RefusingRelay("451 4.7.1 Greylisted, try again later")) as port:
        config = intake_config(tmp_path, port, give_up_hours=2)
        message_id = queue_acknowledgement(store, KELLY, created=T0)
        deliver_pending(store, config, now=T0)
        deliver_pending(store, config, now=T0 + dt.timedelta(hours=1))
        assert outbox_message(store, message_id).status == "retrying"
        deliver_pending(store, config, now=T0 + dt.timedelta(hours=2, minutes=30))

    row = outbox_message(store, message_id)
    assert (row.status, row.attempts, row.next_attempt) == ("failed", 3, None)
    assert row.last_error == "gave up after 3 attempts over 2.5 hours: 451 4.7.1 Greylisted, try again later"


class Crash(BaseException):
    """The process dies: nothing after this runs, not even `except Exception`."""


def test_a_crash_resends_only_the_message_in_flight(store: Store, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    relay = RecordingRelay()
    real_sendmail = smtplib.SMTP.sendmail
    calls = 0

    def sendmail_then_crash_on_the_third(self: smtplib.SMTP, *args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        result = real_sendmail(self, *args, **kwargs)
        if calls == 3:
            raise Crash()  # the relay has the third message; the outbox has not recorded it
        return result

    with running_relay(relay) as port:
        config = intake_config(tmp_path, port)
        queued = [queue_acknowledgement(store, f"contact{n}@bayside.example") for n in range(5)]
        monkeypatch.setattr(smtplib.SMTP, "sendmail", sendmail_then_crash_on_the_third)
        with pytest.raises(Crash):
            deliver_pending(store, config, now=T0)
        monkeypatch.undo()
        assert [r.status for r in outbox_messages(store)] == ["sent", "sent", "queued", "queued", "queued"]

        # The restarted daemon sends the rest at once, and the one in flight when its lease runs out.
        assert deliver_pending(store, config, now=T0) == 2
        assert deliver_pending(store, config, now=T0 + LEASE) == 1

    assert relay.message_ids() == {queued[0]: 1, queued[1]: 1, queued[2]: 2, queued[3]: 1, queued[4]: 1}
    assert [r.status for r in outbox_messages(store)] == ["sent"] * 5


def test_mail_to_a_bouncing_contact_is_suppressed(store: Store, tmp_path: Path) -> None:
    add_contact(store, KELLY, bouncing=True)
    add_contact(store, ZACK)
    relay = RecordingRelay()
    with running_relay(relay) as port:
        to_kelly = queue_acknowledgement(store, KELLY.upper())
        to_zack = queue_acknowledgement(store, ZACK)
        to_both = queue_acknowledgement(store, KELLY, ZACK)
        assert deliver_pending(store, intake_config(tmp_path, port), now=T0) == 2

    suppressed = outbox_message(store, to_kelly)
    assert (suppressed.status, suppressed.last_error, suppressed.attempts) == ("suppressed", SUPPRESSED_BOUNCING, 0)
    assert outbox_message(store, to_zack).status == outbox_message(store, to_both).status == "sent"
    assert [e.rcpt_tos for e in relay.envelopes] == [[ZACK], [ZACK]]


# --- TLS and AUTH --------------------------------------------------------------------------


@pytest.fixture
def certificate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, trusted by the client through SSL_CERT_FILE."""
    cert, key = tmp_path / "relay.pem", tmp_path / "relay.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"], check=True, capture_output=True)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    return cert, key


def server_tls(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*map(str, certificate))
    return context


def accept_support_login(server: SMTPServer, session: Session, envelope: Envelope, mechanism: str,
                         auth_data: Any) -> AuthResult:
    good = isinstance(auth_data, LoginPassword) and auth_data == (SUPPORT.encode(), b"s3cret relay password")
    return AuthResult(success=good, handled=False)  # not handled: aiosmtpd answers 535 itself


def test_starttls_and_auth_with_the_password_from_the_environment(
        store: Store, tmp_path: Path, certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INTAKE_RELAY_PASSWORD", "s3cret relay password")
    relay = RecordingRelay()
    with running_relay(relay, tls_context=server_tls(certificate), require_starttls=True, auth_required=True,
                       authenticator=accept_support_login) as port:
        config = intake_config(tmp_path, port, relay_security="starttls", relay_username=SUPPORT,
                               relay_password_env="INTAKE_RELAY_PASSWORD")
        message_id = queue_acknowledgement(store, KELLY)
        assert deliver_pending(store, config, now=T0) == 1

    assert relay.message_ids() == {message_id: 1}


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_implicit_tls_and_auth_with_the_password_from_a_file(store: Store, tmp_path: Path,
                                                             certificate: tuple[Path, Path]) -> None:
    (tmp_path / "relay-password").write_text("s3cret relay password\n")
    relay = RecordingRelay()
    # aiosmtpd counts only STARTTLS as TLS for AUTH, so on an implicit-TLS port it must be told.
    with running_relay(relay, ssl_context=server_tls(certificate), auth_required=True, auth_require_tls=False,
                       authenticator=accept_support_login) as port:
        config = intake_config(tmp_path, port, relay_security="tls", relay_username=SUPPORT,
                               relay_password_file="relay-password")
        message_id = queue_acknowledgement(store, KELLY)
        assert deliver_pending(store, config, now=T0) == 1

    assert relay.message_ids() == {message_id: 1}


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_a_refused_login_is_the_relays_problem_not_the_messages(store: Store, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INTAKE_RELAY_PASSWORD", "an old password")
    relay = RecordingRelay()
    with running_relay(relay, auth_required=True, auth_require_tls=False, authenticator=accept_support_login) as port:
        config = intake_config(tmp_path, port, relay_username=SUPPORT, relay_password_env="INTAKE_RELAY_PASSWORD")
        message_id = queue_acknowledgement(store, KELLY)
        assert deliver_pending(store, config, now=T0) == 0

        row = outbox_message(store, message_id)
        assert (row.status, row.attempts) == ("retrying", 1)
        assert "535" in (row.last_error or "")

        monkeypatch.setenv("INTAKE_RELAY_PASSWORD", "s3cret relay password")
        assert deliver_pending(store, config, now=T0 + dt.timedelta(minutes=5)) == 1
    assert relay.message_ids() == {message_id: 1}


def test_starttls_to_a_relay_without_it_is_retried_with_the_reason(store: Store, tmp_path: Path) -> None:
    with running_relay(RecordingRelay()) as port:
        message_id = queue_acknowledgement(store, KELLY)
        deliver_pending(store, intake_config(tmp_path, port, relay_security="starttls"), now=T0)

    row = outbox_message(store, message_id)
    assert row.status == "retrying"
    assert "STARTTLS" in (row.last_error or "")


# --- the daemon's timer -------------------------------------------------------------------


def test_next_due_is_when_there_is_delivery_work(store: Store, tmp_path: Path) -> None:
    assert next_due(store) is None
    queue_acknowledgement(store, KELLY, created=T0)
    assert next_due(store) == T0  # never attempted: due at once
    deliver_pending(store, intake_config(tmp_path), now=T0)
    assert next_due(store) is None
