"""The quote strippers run on replies only: a new case that quotes nothing is read as it is, with the same result.

quotequail and mail-parser-reply cost more than the rest of parsing a
message together, and on a new conversation they find nothing. So
`parsers.submission` tells `visible_reply` whether the headers name an
earlier message, and when they do not and the text shows nothing either
library could take for quoted history (`may_hold_quote`), neither runs. These
tests prove the skip changes no result: on every message under tests/data and
on quoted text in every style the libraries know, and that the word lists
still cover the libraries' own patterns (an upgrade adding one fails here).
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import quotequail
from mailparser_reply.parser import EmailMessage as ReplyHeaderMessage

from parsers import quotes
from parsers.message import NotAnEmail, parse_message
from parsers.quotes import HEADER_NAMES, QUOTE_WORDS, REPLY_HEADER_LANGUAGES, may_hold_quote, visible_reply
from parsers.submission import parse
from routing.schema import DEFAULT_TABLE

DATA = Path(__file__).resolve().parent / "data"
EVERY_MESSAGE = sorted(DATA.rglob("*.eml"))

QUOTED_STYLES = [
    "Thanks.\n\nOn Tue, Sep 7, 2021 at 9:00 AM Intake <support@intake.example> wrote:\n> Hello",
    "Danke.\n\nAm 07.09.2021 um 09:00 schrieb Intake Support:\n> Hallo",
    "Merci.\n\nLe 7 sept. 2021 à 09:00, Intake Support a écrit :\n> Bonjour",
    "Gracias.\n\nEl mar, 7 sept 2021 a las 9:00, Intake escribió:\n> Hola",
    "Tack.\n\nDen 7 sep. 2021 kl. 09:00 skrev Intake Support <support@intake.example>:\nHej",
    "Grazie.\n\nIl giorno mar 7 set 2021 alle 09:00 Intake ha scritto:\nCiao",
    "Ok.\n\n2021/09/07 Intake Support <support@intake.example>\nHello",
    "See below.\n\n-----Original Message-----\nFrom: Intake\nSent: Tuesday\nSubject: Hello\n\nHello",
    "See below.\n\nFrom: Intake Support\nSent: Tuesday, September 7, 2021 9:00 AM\nTo: Zack\n\nHello",
    "Siehe unten.\n\nVon: Intake Support\nGesendet: Dienstag\nAn: Zack\nBetreff: Hallo\n\nHallo",
    "Voir ci-dessous.\n\nDe : Intake Support\nEnvoyé : mardi\nÀ : Zack\nObjet : Bonjour\n\nBonjour",
    "FYI\n\nBegin forwarded message:\n\nFrom: Intake\nDate: Tuesday\n\nHello",
    "FYI\n\n---------- Forwarded message ---------\nFrom: Intake\nDate: Tue\n\nHello",
    "Answer on top\n________________________________\nFrom: Intake\nSent: Tuesday\n\nHello",
    "Which one?\n> The 25-26 one.\n> Or the 24-25 one.\nThe first.",
]

NEW_CASES = [
    "Module: Grade Book\nDescription: None of the teachers can post grades.\nSteps to Reproduce:\n"
    "1. Log in\n2. Go to Grade Book\nIssue Began: 09/07/2021\nExpected Results: Post is active\n\n-- \nZack",
    "Subject: Lost enrollments\nDescription: All enrollments of 21-22 are gone.\nReason for Restore: deleted\n\n"
    "Sent from my iPhone",
    "Preferred Training Date: 10/10/2021\nSubject: Training\nDescription: New staff need training.",
]


def _parsed_or_none(eml: Path) -> Any:
    try:
        return parse_message(eml.read_bytes())
    except NotAnEmail:
        return None


@pytest.mark.parametrize("eml", EVERY_MESSAGE, ids=[str(e.relative_to(DATA)) for e in EVERY_MESSAGE])
def test_read_as_a_new_message_every_stored_message_gives_the_same_text(eml: Path) -> None:
    message = _parsed_or_none(eml)
    if message is None:
        pytest.skip("not mail")
    assert visible_reply(message.text, message.html, reply=False) == visible_reply(message.text, message.html)


@pytest.mark.parametrize("text", QUOTED_STYLES)
def test_quoted_history_in_any_style_is_seen_and_stripped_even_without_reply_headers(text: str) -> None:
    assert may_hold_quote(text)
    assert visible_reply(text, reply=False) == visible_reply(text)


@pytest.mark.parametrize("text", NEW_CASES)
def test_a_new_case_template_shows_no_quote_and_reads_the_same(text: str) -> None:
    assert not may_hold_quote(text)
    assert visible_reply(text, reply=False) == visible_reply(text)


def _refuse_to_run(*args: object, **kwargs: object) -> None:
    raise AssertionError("a quote stripper ran")


def _raw(subject: str, body: str, *extra: str) -> bytes:
    headers = [f"Subject: {subject}", "From: Zack Morris <zack.morris@bayside.example>",
               "To: support@intake.example", "Message-ID: <new-1@bayside.example>", *extra]
    return ("\r\n".join(headers) + "\r\n\r\n" + body.replace("\n", "\r\n")).encode()


def test_a_new_case_never_runs_the_quote_strippers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(quotequail, "unwrap", _refuse_to_run)
    monkeypatch.setattr(quotes._REPLY_HEADERS, "parse_reply", _refuse_to_run)
    submission = parse(_raw("[Application Issue] Teachers unable to post grades", NEW_CASES[0]),
                       DEFAULT_TABLE.forms)
    assert submission.form.case_type == "Application Issue"
    assert submission.new_text.startswith("Module: Grade Book")


@pytest.mark.parametrize("subject, extra", [
    ("Re: [Case #12] Teachers unable to post grades", ()),
    ("Teachers unable to post grades", ("In-Reply-To: <intake.12.abc@intake.example>",)),
    ("Teachers unable to post grades", ("References: <elsewhere@example.org>",)),
    ("Fwd: Teachers unable to post grades", ()),
])
def test_a_reply_by_its_headers_always_runs_them(subject: str, extra: tuple[str, ...],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    real = quotequail.unwrap
    monkeypatch.setattr(quotequail, "unwrap", lambda text: calls.append(text) or real(text))
    parse(_raw(subject, "Still greyed out.", *extra), DEFAULT_TABLE.forms)
    assert calls


def _pattern_words(pattern: str) -> str:
    return re.sub(r"\[(\w)\1\]", r"\1", pattern.lower().replace("\\u00e9", "é"))


def test_every_quotequail_pattern_holds_one_of_the_words() -> None:
    from quotequail import _patterns
    gmail = "([0-9]{4}/[0-9]{1,2}/[0-9]{1,2})"
    for pattern in (*_patterns.REPLY_PATTERNS, *_patterns.FORWARD_PATTERNS):
        words = _pattern_words(pattern)
        assert pattern.startswith(gmail) or "_" * 32 in pattern or any(w in words for w in QUOTE_WORDS), pattern
    assert set(_patterns.HEADER_MAP) <= HEADER_NAMES
    assert (_patterns.MIN_HEADER_LINES, _patterns.MAX_WRAP_LINES) == (2, 2)


def test_every_reply_header_of_mail_parser_reply_is_known() -> None:
    pattern = ReplyHeaderMessage(text="", languages=list(REPLY_HEADER_LANGUAGES)).HEADER_REGEX.pattern
    alternatives = pattern.split(")$|")
    for wrote in (a for a in alternatives if a.startswith("^(?!")):
        assert any(w in _pattern_words(wrote) for w in QUOTE_WORDS), wrote
    for names in re.findall(r"\[\* \]\*\(\?:([^)]*)\):", pattern):
        for name in names.split("|"):
            assert _pattern_words(name).replace("\\u00c0", "à").strip() in HEADER_NAMES, name
    assert "{2,}" in pattern  # two header lines at least, as may_hold_quote counts
