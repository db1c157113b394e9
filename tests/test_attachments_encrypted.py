"""Encrypted mail (S/MIME, PGP/MIME, inline PGP) is kept, refused politely to a contact, and never quoted."""
from __future__ import annotations

import re

import pytest

from conftest import DATA, Intake, compose
from intake.store.database import open_store
from intake.store.models import InboundMessage

ENCRYPTED = ("smime_encrypted.eml", "pgp_mime_encrypted.eml", "pgp_inline_encrypted.eml")


def _ciphertext_lines(raw: bytes) -> list[str]:
    """The lines of the body that carry ciphertext (base64 and armour), long enough to recognise if quoted."""
    body = raw.decode("ascii").split("\r\n\r\n", 1)[1]
    return [line for line in body.splitlines() if len(line) >= 16 and re.fullmatch(r"[A-Za-z0-9+/=]+", line)]


def _stored_raw(database_url: str) -> list[bytes]:
    store = open_store(database_url)
    try:
        with store.session() as session:
            return [row.raw for row in session.query(InboundMessage).order_by(InboundMessage.id)]
    finally:
        store.engine.dispose()


@pytest.mark.parametrize("fixture", ENCRYPTED)
def test_encrypted_mail_from_a_contact_is_kept_and_refused_without_quoting_it(intake: Intake, database_url: str,
                                                                              fixture: str) -> None:
    raw = (DATA / "attachments" / fixture).read_bytes()

    assert intake.ingest(raw).code == 0

    outcome = intake.last_outcome()
    assert outcome["outcome"] == "refused" and outcome["case"] is None
    assert any("encrypted" in reason for reason in outcome["reasons"])
    assert intake.cases() == []
    assert _stored_raw(database_url) == [raw]
    [reply] = intake.outbox()
    assert reply["to"] == ["zack.morris@bayside.example"]
    text = intake.last_reply_text()
    assert "We cannot read encrypted mail" in text
    assert "BEGIN PGP" not in text and "Version: 1" not in text
    ciphertext = _ciphertext_lines(raw)
    assert ciphertext and not [line for line in ciphertext if line in text]


@pytest.mark.parametrize("fixture", ENCRYPTED)
def test_encrypted_mail_from_a_stranger_is_kept_and_never_answered(intake: Intake, fixture: str) -> None:
    raw = (DATA / "attachments" / fixture).read_bytes().replace(
        b"Zack Morris <zack.morris@bayside.example>", b"Someone <someone@elsewhere.example>")

    assert intake.ingest(raw).code == 0

    outcome = intake.last_outcome()
    assert outcome["outcome"] == "refused"
    assert any("no contact" in reason for reason in outcome["reasons"])
    assert intake.outbox() == []


def test_encrypted_mail_from_a_program_is_ignored(intake: Intake) -> None:
    raw = (DATA / "attachments" / "pgp_mime_encrypted.eml").read_bytes().replace(
        b"MIME-Version: 1.0\r\n", b"MIME-Version: 1.0\r\nAuto-Submitted: auto-generated\r\n", 1)

    assert intake.ingest(raw).code == 0

    assert intake.last_outcome()["outcome"] == "ignored"
    assert intake.outbox() == []


def test_an_encrypted_reply_on_a_case_adds_no_comment_and_is_refused(intake: Intake) -> None:
    intake.ingest(compose("Zack Morris <zack.morris@bayside.example>", "Household report",
                          "Case Type: Ask a Question\nModule: Census\nDescription: Where is the household report?\n"))
    [case] = intake.cases()
    [ack] = intake.sent_mail()
    reply = (DATA / "attachments" / "pgp_mime_encrypted.eml").read_bytes().replace(
        b"Subject: Household report (PGP encrypted)",
        f"Subject: Re: {ack['Subject']}\r\nIn-Reply-To: {ack['Message-ID']}".encode())

    assert intake.ingest(reply).code == 0

    assert intake.last_outcome()["outcome"] == "refused"
    assert intake.show(case["number"])["comments"] == []
    assert "We cannot read encrypted mail" in intake.last_reply_text()
