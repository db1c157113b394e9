"""The SMTP/LMTP edge of `intake serve`, over real sockets: what is accepted, refused, stored and answered."""
from __future__ import annotations

import smtplib
import ssl
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import SUPPORT
from intake.mailin.smtp import is_support_address
from smtp_helpers import (
    ZACK_ADDRESS,
    RunningIntake,
    auto_reply,
    case_message,
    converse,
    dot_stuffed,
    make_intake,
    make_tls_certificate,
    open_session,
    require_command,
    smtp_reply,
    wait_until,
)

__all__ = ["make_intake"]  # the fixture, imported for pytest

Make = Callable[..., RunningIntake]


def test_support_addresses_match_in_any_case_and_with_a_plus_tag() -> None:
    support = ("support@intake.example",)
    assert is_support_address("Support@Intake.Example", support)
    assert is_support_address("support+urgent@intake.example", support)
    assert not is_support_address("support@other.example", support)
    assert not is_support_address("supportx@intake.example", support)
    assert not is_support_address("+support@intake.example", support)


def test_a_template_message_over_smtp_becomes_a_case_and_an_acknowledgement(make_intake: Make) -> None:
    intake = make_intake().start()
    intake.send(case_message("Households", message_id="<smtp-case-1@bayside.example>"))
    stored = intake.wait_until_processed(1)
    message = stored.inbound[0]
    assert message.outcome == "case_created" and message.message_id == "smtp-case-1@bayside.example"
    assert message.source == f"smtp:127.0.0.1 mail_from={ZACK_ADDRESS} rcpt={SUPPORT}"
    assert [c.number for c in stored.cases] == [message.case_number]
    assert [(o.kind, o.case_number, o.recipients) for o in stored.outbox] == [
        ("acknowledgement", message.case_number, [ZACK_ADDRESS])]
    wait_until(lambda: all(o.status == "sent" for o in intake.stored().outbox), timeout=30,
               what="the acknowledgement to be delivered to the Maildir")
    assert len(list((intake.maildir / "new").iterdir())) == 1
    assert f"outcome=case_created case={message.case_number}" in intake.log_text()


def test_swaks_delivers_a_case(make_intake: Make, tmp_path: Path) -> None:
    swaks = require_command("swaks")
    intake = make_intake().start()
    eml = tmp_path / "case.eml"
    eml.write_bytes(case_message("Households via swaks", message_id="<swaks-1@bayside.example>"))
    ran = subprocess.run([swaks, "--server", "127.0.0.1", "--port", str(intake.port), "--from", ZACK_ADDRESS,
                          "--to", SUPPORT, "--data", f"@{eml}"], capture_output=True, text=True, timeout=60)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "<-  250 2.0.0 OK: stored as message" in ran.stdout
    stored = intake.wait_until_processed(1)
    assert stored.inbound[0].outcome == "case_created"
    assert [c.subject for c in stored.cases] == ["Households via swaks"]


def test_an_unknown_recipient_is_refused_at_rcpt_and_nothing_is_stored(make_intake: Make) -> None:
    intake = make_intake().start()
    for stranger in ("nobody@intake.example", "support@elsewhere.example"):
        with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
            intake.send(case_message(message_id=f"<to-{stranger}>"), to=[stranger])
        assert refused.value.recipients[stranger] == (550, f"5.1.1 <{stranger}>: no such user here".encode())
    intake.send(case_message(message_id="<tagged@bayside.example>"), to=["Support+Census@Intake.Example"])
    stored = intake.wait_until_processed(1)
    assert stored.message_ids() == ["tagged@bayside.example"]


def test_an_oversize_message_is_refused_with_552_and_nothing_is_stored(make_intake: Make) -> None:
    intake = make_intake(max_message_bytes=20_000).start()
    big = case_message(message_id="<big@bayside.example>", body=QUESTION_WITH_PADDING)
    with intake.smtp() as client:
        code, _ = client.ehlo()
        assert code == 250 and client.esmtp_features["size"] == "20000"
        # A client that announces the size is refused at MAIL ...
        with pytest.raises(smtplib.SMTPSenderRefused) as refused:
            client.sendmail(ZACK_ADDRESS, [SUPPORT], big)
        assert (refused.value.smtp_code, refused.value.smtp_error) == (552, b"5.3.4 Message size exceeds fixed limit")
        # ... one that does not is refused after DATA.
        client.rset()
        assert client.mail(ZACK_ADDRESS)[0] == 250 and client.rcpt(SUPPORT)[0] == 250
        assert client.data(big) == (552, b"5.3.4 Message size exceeds fixed limit")
        assert client.sendmail(ZACK_ADDRESS, [SUPPORT], case_message(message_id="<small@bayside.example>")) == {}
    stored = intake.wait_until_processed(1)
    assert stored.message_ids() == ["small@bayside.example"]


QUESTION_WITH_PADDING = ("Case Type: Ask a Question\nModule: Census\nDescription: Where is the report?\n\n"
                         + "padding line of text\n" * 2000)


def test_starttls_upgrades_the_session_and_the_message_is_stored(make_intake: Make, tmp_path: Path) -> None:
    intake = make_intake(tls=make_tls_certificate(tmp_path), require_tls=True).start()
    with intake.smtp() as client:
        client.ehlo()
        assert client.has_extn("starttls")
        assert client.mail(ZACK_ADDRESS)[0] == 530  # TLS is required before the envelope
        context = ssl.create_default_context()
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE  # the test's own self-signed cert
        assert client.starttls(context=context)[0] == 220
        client.ehlo()
        client.sendmail(ZACK_ADDRESS, [SUPPORT], case_message(message_id="<tls@bayside.example>"))
    stored = intake.wait_until_processed(1)
    assert stored.inbound[0].message_id == "tls@bayside.example" and stored.inbound[0].outcome == "case_created"


def test_lmtp_mode_speaks_lhlo_and_answers_once_per_recipient(make_intake: Make) -> None:
    intake = make_intake(lmtp=True).start()
    with smtplib.LMTP("127.0.0.1", intake.port, timeout=30) as client:
        assert client.docmd("EHLO", "client.example")[0] == 500  # LMTP has no EHLO
        assert client.ehlo()[0] == 250  # smtplib's LMTP says LHLO here
        client.sendmail(ZACK_ADDRESS, [SUPPORT], case_message(message_id="<lmtp-1@bayside.example>"))
    sock = open_session(intake.port, lmtp=True, rcpts=[SUPPORT, "support+census@intake.example"])
    with sock:
        sock.sendall(dot_stuffed(auto_reply("<lmtp-2@bayside.example>")) + b".\r\n")
        replies = smtp_reply(sock)
        while len(replies) < 2:
            replies += smtp_reply(sock)
        assert [r[:3] for r in replies] == ["250", "250"]
        assert converse(sock, "QUIT")[0].startswith("221")
    stored = intake.wait_until_processed(2)
    assert stored.message_ids() == ["lmtp-1@bayside.example", "lmtp-2@bayside.example"]
    assert stored.inbound[0].source.startswith("lmtp:127.0.0.1 ")
    assert [m.outcome for m in stored.inbound] == ["case_created", "ignored"]


def test_the_same_message_delivered_twice_makes_one_case_and_one_acknowledgement(make_intake: Make) -> None:
    intake = make_intake().start()
    raw = case_message(message_id="<twice@bayside.example>")
    answers = []
    for _ in range(2):
        with intake.smtp() as client:
            client.ehlo()
            assert client.mail(ZACK_ADDRESS)[0] == 250 and client.rcpt(SUPPORT)[0] == 250
            answers.append(client.data(raw))
        intake.wait_until_processed(1)
    assert answers[0][0] == answers[1][0] == 250
    assert b"already received" in answers[1][1]
    stored = intake.stored()
    assert len(stored.inbound) == 1 and len(stored.cases) == 1
    assert [o.kind for o in stored.outbox] == ["acknowledgement"]
