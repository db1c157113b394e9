"""A reply becomes a comment holding only what the contact wrote this time.

Each ``tests/data/replies/NAME.eml`` is a raw reply to "[Case #12] Teachers
unable to post grades" as a real mail client formats it (headers, MIME
structure, charset and transfer encoding); ``NAME.expected.txt`` beside it is
the comment text the case should get.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from parsers.message import parse_message
from parsers.quotes import visible_reply

REPLIES = Path(__file__).resolve().parent / "data" / "replies"
CORPUS = sorted(REPLIES.glob("*.eml"))


def comparable(text: str) -> str:
    """Text with trailing whitespace per line and leading/trailing blank lines ignored."""
    return "\n".join(line.rstrip() for line in text.splitlines()).strip("\n")


def expected_comment(eml: Path) -> str:
    return eml.with_name(eml.stem + ".expected.txt").read_text(encoding="utf-8")


def test_the_corpus_is_there() -> None:
    assert CORPUS, f"no reply messages in {REPLIES}"
    missing = [eml.name for eml in CORPUS if not eml.with_name(eml.stem + ".expected.txt").exists()]
    assert not missing, f"no .expected.txt for {missing}"


@pytest.mark.parametrize("eml", CORPUS, ids=[eml.stem for eml in CORPUS])
def test_comment_holds_only_the_new_text(eml: Path) -> None:
    message = parse_message(eml.read_bytes())
    assert comparable(visible_reply(message.text, message.html)) == comparable(expected_comment(eml))


# --- behaviour the corpus does not pin down --------------------------------------

def test_a_reply_without_quotes_is_kept_whole() -> None:
    text = "Hi,\n\nThe button is still greyed out.\n\nZack"
    assert visible_reply(text) == text


def test_sign_off_words_do_not_end_the_comment() -> None:
    text = "Hi,\n\nThanks, clearing the cache worked.\nBut the export now fails:\n- step one\n- step two\n\nZack"
    assert visible_reply(text) == text


def test_indentation_of_the_new_text_survives() -> None:
    text = ("The log says:\n    at GradeBook.post (gradebook.js:12)\n\n"
            "On Tue, Sep 21, 2021 at 10:02 AM Intake Support wrote:\n> Hello")
    assert visible_reply(text) == "The log says:\n    at GradeBook.post (gradebook.js:12)"


def test_only_quoted_lines_go_when_everything_would_be_stripped() -> None:
    text = "-- \nZack Morris\nIT Coordinator\n> old text"
    assert visible_reply(text) == "--\nZack Morris\nIT Coordinator"


def test_windows_mail_footer_with_its_link_is_removed() -> None:
    text = "Still greyed out.\n\nSent from Mail<https://go.microsoft.com/fwlink/?LinkId=550986> for Windows 10\n"
    assert visible_reply(text) == "Still greyed out."


def test_template_fields_in_a_reply_are_not_taken_for_a_quoted_header() -> None:
    text = ("Subject: Teachers unable to post grades\nPriority: High\nModule: Gradebook\n"
            "Description: The Post grades button is greyed out for every teacher.\n\n"
            "On Tue, Sep 21, 2021 at 10:02 AM Intake Support <support@intake.example> wrote:\n> Hello Zack,")
    assert visible_reply(text) == text.split("\n\nOn Tue")[0]


def test_an_inline_reply_keeps_each_answer_under_the_line_it_answers() -> None:
    text = ("On Tue, Sep 21, 2021 at 10:02 AM Intake Support <support@intake.example> wrote:\n"
            "> Hello Zack,\n>\n> > Older question?\n> Which calendar?\n\nThe 25-26 one.\n\n"
            "> Which school?\nBayside High.\n\n> Regards,\n> Support\n\nSent from my iPhone\n")
    assert visible_reply(text) == ("> Older question?\n> Which calendar?\n\nThe 25-26 one.\n\n"
                                   "> Which school?\n\nBayside High.")


def test_a_footer_or_signature_below_the_quote_leaves_no_context_behind() -> None:
    text = "Yes, please reset them.\n\n> Shall we reset the passwords?\n\n-- \nZack Morris\nIT Coordinator\n"
    assert visible_reply(text) == "Yes, please reset them."
