"""Files uuencoded into a text body (``begin 644 name`` … ``end``) become attachments, not a wall of text."""
from __future__ import annotations

import binascii
import hashlib

from conftest import Intake
from parsers.attachments import split_uuencoded

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02\x00\x00\x00" + bytes(range(200))


def _uuencoded(content: bytes) -> str:
    return "".join(binascii.b2a_uu(content[at:at + 45]).decode() for at in range(0, len(content), 45)) + "`\n"


def _plain_mail(body: str) -> bytes:
    """A message as an old client or a script sends it: no MIME at all."""
    return ("From: Zack Morris <zack.morris@bayside.example>\r\nTo: support@intake.example\r\n"
            "Subject: Household report, screenshot below\r\nMessage-ID: <uu@bayside.example>\r\n\r\n"
            + body.replace("\n", "\r\n")).encode()


def test_a_uuencoded_file_in_the_body_is_an_attachment_and_not_case_text(intake: Intake) -> None:
    body = ("Case Type: Ask a Question\nModule: Census\nDescription: Where is the household report?\n\n"
            f"begin 644 grades.png\n{_uuencoded(PNG)}end\n\n"
            f"begin 600 ../../etc/cron.d/evil\n{_uuencoded(b'* * * * * root sh')}end\n")

    assert intake.ingest(_plain_mail(body)).code == 0

    [case] = intake.cases()
    shown = intake.show(case["number"])
    assert shown["description"] == "Where is the household report?"
    image, script = shown["attachments"]
    assert (image["filename"], image["content_type"], image["sniffed_type"]) == ("grades.png", "image/png",
                                                                                 "image/png")
    assert image["sha256"] == hashlib.sha256(PNG).hexdigest() and image["size"] == len(PNG)
    assert script["filename"] == "evil" and script["size"] == len(b"* * * * * root sh")
    assert "begin 644" not in intake.last_reply_text()


def test_text_that_only_looks_like_uuencode_stays_text() -> None:
    prose = "We begin 644 students on Monday.\nbegin 644 roster.txt\nthis line is not uuencoded data\nend\n"
    assert split_uuencoded(prose) == (prose, ())
    no_end = f"begin 644 cut.bin\n{_uuencoded(b'cut short')}"
    assert split_uuencoded(no_end) == (no_end, ())
    not_ascii = "begin 644 notes.txt\nMérci beaucoup\nend"
    assert split_uuencoded(not_ascii) == (not_ascii, ())


def test_lines_padded_past_their_length_still_decode() -> None:
    padded = binascii.b2a_uu(b"padded line").decode().rstrip("\n") + "  garbage"
    text, [(name, content)] = split_uuencoded(f"before\nbegin 644 pad.bin\n{padded}\n`\nend\nafter")
    assert (text, name, content) == ("before\nafter", "pad.bin", b"padded line")
