"""parsers.message: raw bytes become a ParsedMessage, or a NotAnEmail with a reason."""
from __future__ import annotations

from datetime import UTC, datetime
from email.message import EmailMessage

import pytest

from parsers.attachments import sanitise_filename
from parsers.message import NotAnEmail, parse_message


def district_mail(**headers: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = headers.get("from", "Jane Doe <Jane.Doe@District.K12.us>")
    message["To"] = headers.get("to", "Support <Help@Example.com>")
    message["Subject"] = headers.get("subject", "Grade Book totals")
    message["Date"] = "Tue, 07 Sep 2021 10:00:00 -0500"
    message["Message-ID"] = "<abc123@district.k12.us>"
    return message


def test_quoted_printable_utf8_body_is_decoded() -> None:
    message = district_mail()
    message.set_content("Subject: Café menu\nDescription: Ärger mit Noten – bitte prüfen\n",
                        charset="utf-8", cte="quoted-printable")
    raw = message.as_bytes()
    assert b"=C3=A4" in raw or b"=C3=84" in raw
    parsed = parse_message(raw)
    assert parsed.text == "Subject: Café menu\nDescription: Ärger mit Noten – bitte prüfen"
    assert parsed.is_mime
    assert parsed.html is None


def test_base64_body_is_decoded() -> None:
    message = district_mail()
    message.set_content("Module: Grade Book\nPriority: High\n", cte="base64")
    raw = message.as_bytes()
    assert b"Module" not in raw
    assert parse_message(raw).text == "Module: Grade Book\nPriority: High"


def test_iso_8859_1_body_and_encoded_headers() -> None:
    raw = (b"From: =?iso-8859-1?q?Jos=E9_N=FA=F1ez?= <JNunez@District.org>\r\n"
           b"To: help@example.com, Other <Other@Example.com>\r\n"
           b"Cc: boss@district.org\r\n"
           b"Subject: =?iso-8859-1?q?Probl=E8me?=   avec\r\n\tles notes\r\n"
           b"Date: Tue, 07 Sep 2021 10:00:00 -0500\r\n"
           b"Message-ID:  <m1@district.org> \r\n"
           b"In-Reply-To: <case-4@example.com>\r\n"
           b"References: <a@x.org>\r\n <case-4@example.com>\r\n"
           b"MIME-Version: 1.0\r\n"
           b"Content-Type: text/plain; charset=ISO-8859-1\r\n"
           b"Content-Transfer-Encoding: 8bit\r\n\r\n"
           b"Description: \xe9l\xe8ves absents\r\nsecond line\r\n")
    parsed = parse_message(raw)
    assert parsed.from_address == "jnunez@district.org"
    assert parsed.from_name == "José Núñez"
    assert parsed.to == ("help@example.com", "other@example.com", "boss@district.org")
    assert parsed.subject == "Problème avec les notes"
    assert parsed.message_id == "m1@district.org"
    assert parsed.in_reply_to == "case-4@example.com"
    assert parsed.references == ("a@x.org", "case-4@example.com")
    assert parsed.date == datetime(2021, 9, 7, 15, 0, tzinfo=UTC)
    assert parsed.text == "Description: élèves absents\nsecond line"
    assert parsed.return_path is None


def test_headers_keep_order_names_and_lookup_is_case_insensitive() -> None:
    raw = (b"Received: from a by b\nReceived: from c by d\nFrom: a@b.org\nX-Custom: one\n"
           b"Subject: hi\n\nbody\n")
    parsed = parse_message(raw)
    assert [name for name, _ in parsed.headers] == ["Received", "Received", "From", "X-Custom", "Subject"]
    assert parsed.header("x-custom") == "one"
    assert parsed.header_all("RECEIVED") == ("from a by b", "from c by d")
    assert parsed.header("Missing") is None
    assert parsed.header_all("Missing") == ()


def test_return_path_distinguishes_null_sender_from_absent() -> None:
    bounce = parse_message(b"Return-Path: <>\nFrom: MAILER-DAEMON@x.org\nSubject: Undeliverable\n\nx\n")
    ordinary = parse_message(b"Return-Path: <Bounce@X.org>\nFrom: a@x.org\nSubject: s\n\nx\n")
    assert bounce.return_path == ""
    assert ordinary.return_path == "bounce@x.org"


def test_html_only_mail_becomes_lines() -> None:
    message = district_mail()
    message.set_content("<html><body><p><b>Subject:</b> x</p><p><b>Module:</b> Grade Book</p>"
                        "<div>Priority: High<br>Type: Campus&nbsp;Application</div>"
                        "<table><tr><td>Who is impacted?</td><td>teachers</td></tr></table></body></html>",
                        subtype="html")
    parsed = parse_message(message.as_bytes())
    lines = [line.strip() for line in parsed.text.split("\n")]
    assert "Subject: x" in lines
    assert "Module: Grade Book" in lines
    assert "Priority: High" in lines
    assert "Type: Campus\u00a0Application" in lines or "Type: Campus Application" in lines
    assert any(line.startswith("Who is impacted?") and line.endswith("teachers") for line in lines)
    assert parsed.html is not None and "<b>Module:</b>" in parsed.html
    assert "\r" not in parsed.text


def test_multipart_alternative_prefers_plain_text() -> None:
    message = district_mail()
    message.set_content("Module: Grade Book\n")
    message.add_alternative("<p>Module: <i>Grade Book</i></p>", subtype="html")
    parsed = parse_message(message.as_bytes())
    assert parsed.text == "Module: Grade Book"
    assert parsed.html is not None and "<i>Grade Book</i>" in parsed.html
    assert parsed.attachments == ()


def test_attachments_are_decoded_and_named_safely() -> None:
    message = district_mail()
    message.set_content("See attached.\n")
    png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"
    message.add_attachment(b"root:x:0:0\n", maintype="application", subtype="octet-stream",
                           filename="../../etc/passwd")
    message.add_attachment(png, maintype="image", subtype="png", filename="screen shot.png",
                           disposition="inline")
    message.add_attachment("a,b\n1,2\n", subtype="csv", filename="grades.csv")
    parsed = parse_message(message.as_bytes())
    assert parsed.text == "See attached."
    assert [(a.filename, a.content_type) for a in parsed.attachments] == [
        ("passwd", "application/octet-stream"), ("screen shot.png", "image/png"), ("grades.csv", "text/csv")]
    assert parsed.attachments[0].content == b"root:x:0:0\n"
    assert parsed.attachments[1].content == png
    assert parsed.attachments[2].content.replace(b"\r\n", b"\n") == b"a,b\n1,2\n"


def test_rfc2231_encoded_filename() -> None:
    raw = (b"From: a@district.org\nSubject: files\nMIME-Version: 1.0\n"
           b"Content-Type: multipart/mixed; boundary=BB\n\n"
           b"--BB\nContent-Type: text/plain; charset=utf-8\n\nbody text\n"
           b"--BB\nContent-Type: application/pdf\n"
           b"Content-Disposition: attachment; filename*=UTF-8''%C3%A9l%C3%A8ves%20report.pdf\n"
           b"Content-Transfer-Encoding: base64\n\nJVBERi0xLjQ=\n--BB--\n")
    parsed = parse_message(raw)
    assert parsed.attachments[0].filename == "élèves report.pdf"
    assert parsed.attachments[0].content == b"%PDF-1.4"
    assert parsed.text == "body text"


def test_text_attachment_is_not_body_text() -> None:
    raw = (b"From: a@district.org\nSubject: log\nMIME-Version: 1.0\n"
           b"Content-Type: multipart/mixed; boundary=BB\n\n"
           b"--BB\nContent-Type: text/plain\n\nModule: Grade Book\n"
           b"--BB\nContent-Type: text/plain\nContent-Disposition: attachment\n\nERROR stack trace\n"
           b"--BB\nContent-Type: text/plain\nContent-Disposition: inline; filename=\"notes.txt\"\n\nmy notes\n"
           b"--BB\nContent-Type: image/png\nContent-ID: <logo@x>\nContent-Transfer-Encoding: base64\n\n"
           b"iVBORw0KGgo=\n--BB--\n")
    parsed = parse_message(raw)
    assert parsed.text == "Module: Grade Book"
    assert [a.filename for a in parsed.attachments] == ["attachment-1.txt", "notes.txt", "attachment-3.png"]
    assert parsed.attachments[0].content == b"ERROR stack trace"


def test_sanitise_filename() -> None:
    assert sanitise_filename("../../etc/passwd", 1, "text/plain") == "passwd"
    assert sanitise_filename("C:\\Users\\jane\\report.docx", 1, "application/octet-stream") == "report.docx"
    assert sanitise_filename("..hidden", 1, "text/plain") == "hidden"
    assert sanitise_filename("bad\x00\x1bname\n.txt", 1, "text/plain") == "badname.txt"
    assert sanitise_filename("", 3, "image/png") == "attachment-3.png"
    assert sanitise_filename("../..", 2, "application/pdf") == "attachment-2.pdf"
    long = sanitise_filename("x" * 300 + ".pdf", 1, "application/pdf")
    assert len(long) == 200 and long.endswith(".pdf")


def test_plain_rfc822_message_without_mime() -> None:
    raw = b"From: Jane <jane@district.org>\r\nTo: help@example.com\r\nSubject: Help\r\n\r\nLine one\r\nLine two\r\n"
    parsed = parse_message(raw)
    assert parsed.is_mime is False
    assert parsed.text == "Line one\nLine two"
    assert parsed.from_name == "Jane"
    assert parsed.date is None and parsed.message_id is None


def test_mbox_from_line_is_accepted() -> None:
    parsed = parse_message(b"From jane@district.org Tue Sep  7 10:00:00 2021\nFrom: jane@district.org\n"
                           b"Subject: mbox\n\nhello\n")
    assert parsed.subject == "mbox" and parsed.text == "hello"


def test_bad_date_and_missing_headers_are_none() -> None:
    parsed = parse_message(b"From: not an address\nSubject:\nDate: yesterday-ish\n\n")
    assert parsed.date is None
    assert parsed.from_address is None
    assert parsed.subject == ""
    assert parsed.text == ""


def test_defects_are_readable() -> None:
    raw = (b"From: a@b.org\nSubject: broken\nMIME-Version: 1.0\n"
           b"Content-Type: multipart/mixed; boundary=NOPE\n\nno boundary here\n")
    parsed = parse_message(raw)
    assert parsed.defects
    assert all(isinstance(d, str) and "Defect" in d for d in parsed.defects)


@pytest.mark.parametrize("raw, reason", [
    (b"", "empty file"),
    (b"  \r\n\n", "empty file"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x01\x00", "binary data"),
    (b"Hello team,\nthe grade book is broken again.\nThanks\n", "no email headers"),
    (b"Note: just a note\nAnother: line\n\nbody\n", "no email headers"),
])
def test_not_an_email(raw: bytes, reason: str) -> None:
    with pytest.raises(NotAnEmail) as caught:
        parse_message(raw)
    assert reason in caught.value.reason
    assert reason in str(caught.value)
