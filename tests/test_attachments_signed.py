"""Signed mail (S/MIME and OpenPGP, detached, opaque and inline): the signed text is the case text, the signature kept.

The fixtures were signed for these tests with throwaway keys (openssl smime and gpg), as the mail
clients that send such mail sign it; intake verifies nothing, so the keys do not matter.
"""
from __future__ import annotations

import pytest

from conftest import DATA, Intake

SIGNED = DATA / "attachments"


@pytest.mark.parametrize(("fixture", "signature"), [
    ("smime_signed.eml", ("smime.p7s", "application/pkcs7-signature")),  # multipart/signed
    ("smime_opaque_signed.eml", ("smime.p7m", "application/x-pkcs7-mime")),  # application/pkcs7-mime signed-data
    ("pgp_mime_signed.eml", ("signature.asc", "application/pgp-signature")),  # RFC 3156 multipart/signed
])
def test_the_signed_text_is_the_case_and_the_signature_is_kept(intake: Intake, fixture: str,
                                                               signature: tuple[str, str]) -> None:
    assert intake.run("ingest", str(SIGNED / fixture)).code == 0

    assert intake.last_outcome()["outcome"] == "case_created"
    [case] = intake.cases()
    shown = intake.show(case["number"])
    assert (shown["case_type"], shown["module"]) == ("Ask a Question", "Census")
    assert shown["description"] == "Where is the household report?"
    assert [(a["filename"], a["content_type"]) for a in shown["attachments"]] == [signature]
    assert "Where is the household report?" in intake.last_reply_text()


def test_an_inline_pgp_signed_message_is_read_without_its_armour(intake: Intake) -> None:
    assert intake.run("ingest", str(SIGNED / "pgp_inline_signed.eml")).code == 0

    [case] = intake.cases()
    shown = intake.show(case["number"])
    # The signer's "- a line" arrives dash-escaped as "- - a line" (RFC 4880 section 7) and is read as written.
    assert shown["description"] == "Where is the household report?\n- a line that starts with a dash"
    [kept] = shown["attachments"]
    assert (kept["filename"], kept["content_type"]) == ("signature.asc", "application/pgp-signature")
    reply = intake.last_reply_text()
    assert "BEGIN PGP" not in reply and "Hash: SHA256" not in reply
