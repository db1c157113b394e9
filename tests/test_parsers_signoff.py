"""parsers.signoff and the field boundaries of parsers.submission: values end where the person meant."""
from __future__ import annotations

import pytest

from conftest import compose
from parsers.signoff import drop_sign_off, is_closing
from parsers.submission import parse
from routing.schema import FORMS


@pytest.mark.parametrize("line", ["Thanks,", "Thank you!", "Kind regards", "Regards, Zack", "Cheers - Kelly",
                                  "Best wishes,", "thanks so much", "Mit freundlichen Grüßen", "Cordialement,",
                                  "Saludos, Ana", "Med vänliga hälsningar"])
def test_closings(line: str) -> None:
    assert is_closing(line)


@pytest.mark.parametrize("line", ["Thanks, that worked.", "Thanks for looking", "Best practice is to wait",
                                  "Regards to the team at the district office and everyone"])
def test_sentences_are_no_closings(line: str) -> None:
    assert not is_closing(line)


def test_a_name_and_title_block_after_a_blank_line_goes() -> None:
    lines = ["It broke.", "", "Zack Morris", "Technology Director", "Bayside School District"]
    assert drop_sign_off(lines, "Zack Morris") == ["It broke.", ""]
    assert drop_sign_off(lines, "Morris, Zack") == ["It broke.", ""]  # as Outlook writes the name
    assert drop_sign_off(["It broke.", "", "Zack Morris | Technology Director"], "Zack Morris") == ["It broke.", ""]
    assert drop_sign_off(["It broke.", "", "Zack"], "Zack Morris") == ["It broke.", ""]


def test_a_paragraph_that_only_mentions_the_sender_stays() -> None:
    lines = ["It broke.", "", "Zack Morris reported it first.", "Then it spread."]
    assert drop_sign_off(lines, "Zack Morris") == lines
    assert drop_sign_off(["It broke.", "", "Zack Morris"], "") == ["It broke.", "", "Zack Morris"]


def _values(body: str) -> dict[str, object]:
    return dict(parse(compose("Zack Morris <zack.morris@bayside.example>", "[Application Issue] x", body),
                      FORMS).form.values)


def test_single_line_kinds_take_their_own_line_only() -> None:
    values = _values("Module: Attendance\nattendance office\nIssue Began: 11/28/2026\nZack Morris\n"
                     "Technology Director\nPriority: High\nsince noon\n")
    assert values["Module"] == "Attendance"
    assert str(values["Issue Began"]) == "2026-11-28"
    assert values["Priority"] == "High"


def test_a_single_line_value_may_be_on_the_line_below_its_label() -> None:
    assert str(_values("Issue Began:\n\n11/28/2026\n")["Issue Began"]) == "2026-11-28"


def test_multi_line_values_run_to_the_next_label_and_lose_shared_indentation() -> None:
    values = _values("    Description: It broke.\n    It still is.\n      indented log line\n"
                     "    Module: Census\n")
    assert values["Description"] == "It broke.\nIt still is.\n  indented log line"


def test_an_indented_signature_separator_ends_the_text() -> None:
    values = _values("  Description: It broke.\n  More.\n  --\n  Zack Morris\n  Technology Director\n")
    assert values["Description"] == "It broke.\nMore."


def test_the_case_type_line_is_its_own_line_only() -> None:
    raw = compose("Zack Morris <zack.morris@bayside.example>", "Households", (
        "Case Type: Ask a Question\nI could not find the report anywhere.\nModule: Census\n"
        "Description: Where is the household report?\n"))
    assert parse(raw, FORMS).form.case_type == "Ask a Question"
