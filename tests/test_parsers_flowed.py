"""parsers.flowed: RFC 3676 format=flowed text re-joined into paragraphs."""
from __future__ import annotations

from parsers.flowed import unflow


def test_soft_breaks_are_joined_and_hard_breaks_kept() -> None:
    text = "None of the teachers at Campus High \nare able to post grades.\nSecond line.\n"
    assert unflow(text) == "None of the teachers at Campus High are able to post grades.\nSecond line.\n"


def test_delsp_deletes_the_space_before_a_soft_break() -> None:
    assert unflow("Grade\u00ad \nBook", delsp=True) == "Grade\u00adBook"
    assert unflow("abc \ndef", delsp=True) == "abcdef"


def test_space_stuffing_is_undone() -> None:
    assert unflow(" From here\n  indented") == "From here\n indented"


def test_quoted_lines_join_only_lines_of_the_same_depth() -> None:
    text = "> Which calendar are \n> the teachers using? \nThe 25-26 one.\n>> older \n> one"
    assert unflow(text) == "> Which calendar are the teachers using? \nThe 25-26 one.\n>> older \n> one"


def test_the_signature_separator_is_not_a_soft_break() -> None:
    assert unflow("Zack \n-- \nZack Morris") == "Zack -- \nZack Morris"
    assert unflow("Zack\n-- \nZack Morris") == "Zack\n-- \nZack Morris"


def test_text_that_is_not_flowed_is_unchanged() -> None:
    text = "Module: Census\nDescription: Where is it?\n\nThanks,\nKelly"
    assert unflow(text) == text
