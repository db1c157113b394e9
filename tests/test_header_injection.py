"""Nothing in a message's headers or template becomes header syntax in the mail intake sends.

The attacks of the trust issue that reach outgoing headers: a From display
name, a Subject, and a `Subject:` template line, each an RFC 2047 encoded word
that decodes to CR/LF and more headers, or to another encoded word. Python
3.11 and 3.12 parse a header value assigned to a message as if it came off the
wire, so such text, copied as it is, is decoded a second time when intake
writes it. Asserted on the bytes intake hands the relay.
"""
from __future__ import annotations

import base64
import email
from email import policy

import pytest

from conftest import SUPPORT, Intake

ZACK = "zack.morris@bayside.example"
INJECTED = ("Bcc", "Content-Type: text/plain\r\n\r\nReset")


def raw_mail(from_header: str, subject: str, body: str, message_id: str) -> bytes:
    """A message written by hand, as an attacker would: headers exactly as given."""
    return (f"From: {from_header}\r\nTo: {SUPPORT}\r\nSubject: {subject}\r\nMessage-ID: <{message_id}>\r\n"
            f"Date: Tue, 01 Dec 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\n"
            f"Content-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n").encode()


def sent_headers(raw: bytes) -> list[str]:
    """The header lines of one sent message, unfolded, as a receiving server reads them."""
    head = raw.replace(b"\r\n", b"\n").split(b"\n\n", 1)[0].decode("ascii")
    return [line for line in head.replace("\n ", " ").replace("\n\t", " ").split("\n") if line]


def assert_clean(raw: bytes) -> None:
    names = [line.split(":", 1)[0].lower() for line in sent_headers(raw)]
    assert "bcc" not in names and names.count("subject") == 1 and names.count("content-type") == 1, names
    parsed = email.message_from_bytes(raw, policy=policy.default)
    for name in ("Subject", "To", "From"):
        assert "\r" not in str(parsed[name]) and "\n" not in str(parsed[name])
    assert b"Reset your password" not in raw.split(b"\r\n\r\n", 1)[0].replace(b"\n\n", b"")


@pytest.mark.parametrize("name", [
    "=?utf-8?q?IT_Desk=0D=0AContent-Type=3A_text/plain=0D=0A=0D=0AReset_your_password_at_x?=",
    "=?utf-8?b?" + "SVQgRGVzaw0KQmNjOiBldmlsQGV2aWwudGVzdA==" + "?=",  # "IT Desk\r\nBcc: evil@evil.test"
])
def test_a_from_name_that_decodes_to_line_breaks_is_never_answered(intake: Intake, name: str) -> None:
    ran = intake.ingest(raw_mail(f"{name} <victim@victim.test>", "Help", "Please help", "inject-from@victim.test"))
    assert ran.code == 0, ran.err
    last = intake.last_outcome()
    assert last["outcome"] == "refused" and "the sender is ambiguous" in last["reasons"][-1]
    assert intake.outbox() == [] and intake.relay.received == []  # type: ignore[union-attr]


def test_a_from_name_that_decodes_to_an_encoded_word_stays_a_name(intake: Intake) -> None:
    inner = "=?utf-8?q?IT_Desk=0D=0AContent-Type=3A_text/plain=0D=0A=0D=0AReset_your_password_at_x?="
    outer = "=?utf-8?b?" + base64.b64encode(inner.encode()).decode() + "?="
    ran = intake.ingest(raw_mail(f"{outer} <victim@victim.test>", "Help", "Please help", "inject-from2@victim.test"))
    assert ran.code == 0, ran.err
    refusal = intake.relay.received[-1]  # type: ignore[union-attr]
    assert_clean(refusal)
    to = email.message_from_bytes(refusal, policy=policy.default)["To"]
    assert [a.addr_spec for a in to.addresses] == ["victim@victim.test"]


def test_a_subject_that_decodes_to_an_encoded_word_injects_nothing(intake: Intake) -> None:
    inner = "=?utf-8?q?Grades=0D=0ABcc=3A_evil=40evil.test?="
    outer = "=?utf-8?b?" + base64.b64encode(inner.encode()).decode() + "?="
    body = "Case Type: Ask a Question\nModule: Census\nDescription: Where is the household report?\n"
    ran = intake.ingest(raw_mail(f"Zack Morris <{ZACK}>", outer, body, "inject-subject@bayside.example"))
    assert "case_created" in ran.out, ran.out
    acknowledgement = intake.relay.received[-1]  # type: ignore[union-attr]
    assert_clean(acknowledgement)
    assert "Grades" in str(email.message_from_bytes(acknowledgement, policy=policy.default)["Subject"])


def test_a_template_subject_line_injects_nothing_into_any_mail_on_the_case(intake: Intake) -> None:
    body = ("Case Type: Ask a Question\nModule: Census\n"
            "Subject: =?utf-8?q?Households=0D=0ABcc=3A_evil=40evil.test?=\n"
            "Description: Where is the household report?\n")
    ran = intake.ingest(raw_mail(f"Zack Morris <{ZACK}>", "Households", body, "inject-body@bayside.example"))
    assert "case_created" in ran.out, ran.out
    number = intake.cases()[-1]["number"]
    assert intake.run("comment", str(number), "--body", "Which school year?").code == 0
    assert intake.run("resolve", str(number), "--resolution", "Answered.").code == 0
    sent = intake.relay.received  # type: ignore[union-attr]
    assert len(sent) == 3  # acknowledgement, comment, resolution
    for raw in sent:
        assert_clean(raw)
