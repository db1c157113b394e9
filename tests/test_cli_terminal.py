"""What the command line prints from mail never sends control characters to the staff's terminal."""
from __future__ import annotations

import json
import re

from conftest import Intake
from intake.cli.text import safe

# Anything a terminal acts on, other than the line breaks the command line writes itself.
CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f]")

# ESC ] 0 ; … BEL retitles the window, ESC [ 2 J clears it, U+009B is CSI on its own.
HOSTILE_SUBJECT = "=?utf-8?q?Households=1B=5D0=3Bpwned=07=1B=5B2J=C2=9B31m?="


def hostile_mail(case_type: str = "Ask a Question") -> bytes:
    return ("From: zack.morris@bayside.example\r\nTo: support@intake.example\r\n"
            f"Subject: {HOSTILE_SUBJECT}\r\nMessage-ID: <hostile@bayside.example>\r\n"
            "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
            f"Case Type: {case_type}\nModule: Census\n"
            "Description: Where is the \x1b[31mhousehold report?\nSecond line\r\x1b[1A.\n").encode()


def assert_terminal_safe(text: str) -> None:
    found = CONTROL.search(text)
    assert found is None, f"raw {found.group()!r} at {found.start()}: {text[max(0, found.start() - 40):][:80]!r}"


def test_safe_escapes_controls_visibly() -> None:
    assert safe("a\x1b[2Jb\r\n\x07\x9b\x7f\u202e") == "a\\x1b[2Jb\\x0d\\x0a\\x07\\x9b\\x7f\\u202e"
    assert safe("Grades — für Schüler") == "Grades — für Schüler"


def test_a_hostile_subject_is_shown_escaped_by_messages_and_show(intake: Intake) -> None:
    ran = intake.ingest(hostile_mail())
    assert "case_created" in ran.out
    assert "\x1b" in intake.messages()[-1]["subject"]  # stored as received; only the printing escapes

    listed = intake.run("messages")
    shown = intake.run("show", "1")

    for text in (listed.out, shown.out):
        assert_terminal_safe(text)
        assert "Households\\x1b]0;pwned\\x07\\x1b[2J\\x9b31m" in text
    assert "    Where is the \\x1b[31mhousehold report?" in shown.out.splitlines()


def test_hostile_reasons_comments_and_the_dry_run_are_escaped(intake: Intake) -> None:
    raw = hostile_mail(case_type="Pizza\x1b[2J Order")
    path = intake.write(raw)

    dry = intake.run("ingest", "--dry-run", str(path))
    ingested = intake.run("ingest", str(path))
    listed = intake.run("messages")

    for text in (dry.out, ingested.out, listed.out):
        assert_terminal_safe(text)
    assert "Pizza\\x1b[2J Order" in listed.out


def test_comment_bodies_are_escaped_in_show(intake: Intake) -> None:
    intake.ingest(hostile_mail())
    assert intake.run("comment", "1", "--internal", "--body", "looked at it\x1b]0;gotcha\x07\nline two").code == 0

    shown = intake.run("show", "1")

    assert_terminal_safe(shown.out)
    assert "      looked at it\\x1b]0;gotcha\\x07" in shown.out.splitlines()
    assert "      line two" in shown.out.splitlines()  # the body's own lines stay lines


def test_json_escapes_what_a_terminal_would_obey_and_keeps_the_value(intake: Intake) -> None:
    intake.ingest(hostile_mail())

    ran = intake.run("show", "1", "--json")

    assert_terminal_safe(ran.out)
    assert json.loads(ran.out)["subject"] == "Households\x1b]0;pwned\x07\x1b[2J\x9b31m"
