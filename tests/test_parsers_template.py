"""parsers.template: the "Field: value" body template, as people and mail clients write it."""
from __future__ import annotations

from email.message import EmailMessage

import pytest

from parsers.message import parse_message
from parsers.template import parse_template
from routing.schema import known_labels

LABELS = known_labels()

SEED_EXAMPLE = {
    "Subject": "Grade Book totals do not include extra credit",
    "Description": ("Since the update on Friday, teachers at Lincoln High see semester totals that leave out\n"
                    "extra-credit assignments.\n"
                    "\n"
                    "It happens in every section we checked; progress reports went home with the wrong grades."),
    "Steps to Reproduce": ("1. Log in as a teacher\n"
                           "2. Open Grade Book for any section\n"
                           "3. Add an extra-credit assignment and score it\n"
                           "4. Look at the semester total"),
    "Environment Changes": "Campus was updated to 2135 on Friday.",
    "Who is impacted?": "All teachers at Lincoln High (about 60)",
    "Issue Began": "09/03/2021",
    "Error Message": "",
    "Expected Results": "Extra-credit points are added to the semester total.",
    "Module": "Grade Book",
}


def seed_body() -> str:
    return "\n".join(f"{label}: {text}" if "\n" not in text else f"{label}:\n{text}"
                     for label, text in SEED_EXAMPLE.items()) + "\n"


def values(body: str) -> dict[str, str]:
    return {f.label: f.text for f in parse_template(body, LABELS).fields}


def test_seed_example_round_trips_exactly() -> None:
    parsed = parse_template(seed_body(), LABELS)
    assert {f.label: f.text for f in parsed.fields} == SEED_EXAMPLE
    assert [f.label for f in parsed.fields] == list(SEED_EXAMPLE)
    assert parsed.preamble == ""
    assert parsed.repeated == ()
    assert parsed.get("Description") is not None
    assert parsed.get("description").line == 2  # type: ignore[union-attr]
    assert parsed.get("Module").line == seed_body().count("\n")  # type: ignore[union-attr]
    assert parsed.get("Priority") is None


@pytest.mark.parametrize("line", [
    "Module: Grade Book",
    "**Module:** Grade Book",
    "**Module**: Grade Book",
    "*Module*: Grade Book",
    "__Module__ : Grade Book",
    "Module : Grade Book",
    "module:Grade Book",
    "- Module: Grade Book",
    "• Module: Grade Book",
    "* Module: Grade Book",
    "  \tModule:\tGrade Book  ",
    "Campus   Module: Grade Book",
    "Campus\u00a0Module: Grade Book",
    "Campus\tmodule: Grade Book",
])
def test_label_spellings_mail_clients_produce(line: str) -> None:
    parsed = parse_template(f"{line}\nPriority: High\n", LABELS)
    assert parsed.get("Module").text == "Grade Book"  # type: ignore[union-attr]
    assert parsed.get("Priority").text == "High"  # type: ignore[union-attr]


def test_question_mark_is_optional() -> None:
    assert values("Who is impacted: teachers\n") == {"Who is impacted?": "teachers"}
    assert values("Who is impacted?: teachers\n") == {"Who is impacted?": "teachers"}
    assert values("WHO IS IMPACTED? : teachers\n") == {"Who is impacted?": "teachers"}


def test_written_label_and_alias_map_to_canonical() -> None:
    parsed = parse_template("**severity:** High\nDetails: it broke\n", LABELS)
    assert [(f.label, f.written) for f in parsed.fields] == [("Priority", "severity"), ("Description", "Details")]


def test_label_on_its_own_line_takes_following_lines() -> None:
    body = "Description\nThe totals are wrong.\nOnly in Grade Book.\n\nSteps to Reproduce:\n1. Open it\n2. Look\n"
    assert values(body) == {"Description": "The totals are wrong.\nOnly in Grade Book.",
                            "Steps to Reproduce": "1. Open it\n2. Look"}


def test_unknown_label_is_part_of_the_value() -> None:
    body = "Description: It broke.\nNote: only on Mondays\nhttp://campus.example.org/x\nModule: Grade Book\n"
    assert values(body) == {"Description": "It broke.\nNote: only on Mondays\nhttp://campus.example.org/x",
                            "Module": "Grade Book"}


def test_preamble_and_repeated_labels() -> None:
    body = "Hello,\n\nplease help.\n\nModule: Grade Book\nPriority: Low\nModule: Attendance\nmore\nPriority: High\n"
    parsed = parse_template(body, LABELS)
    assert parsed.preamble == "Hello,\n\nplease help."
    assert parsed.get("Module").text == "Grade Book"  # type: ignore[union-attr]
    assert parsed.get("Priority").text == "Low"  # type: ignore[union-attr]
    assert parsed.repeated == ("Module", "Priority")
    assert [f.line for f in parsed.fields] == [5, 6]


def test_shared_label_text_uses_first_canonical_label() -> None:
    parsed = parse_template("Kind of Request: Add\nType: Other\n", LABELS)
    assert [f.label for f in parsed.fields] == ["Request Type", "Type"]


@pytest.mark.parametrize("ending", [
    "-- \nJane Doe\nModule: Attendance\n",
    "--\nJane Doe\n",
    "On Tue, Sep 7, 2021 at 10:00 AM Support <help@example.com> wrote:\n> Module: Attendance\n",
    "On Tue, Sep 7, 2021 at 10:00 AM Support <help@example.com>\nwrote:\n> Module: Attendance\n",
    "-----Original Message-----\nFrom: Support\nModule: Attendance\n",
    "> Module: Attendance\n> Priority: Low\n",
    "________________________________\nFrom: Support <help@example.com>\nSent: Tuesday\nModule: Attendance\n",
])
def test_signature_and_quoted_history_are_cut(ending: str) -> None:
    body = "Module: Grade Book\nPriority: High\n" + ending
    assert values(body) == {"Module": "Grade Book", "Priority": "High"}


@pytest.mark.parametrize("sign_off", [
    "Thanks,\nJane",
    "Thank you!\nJane Doe\nDistrict IT\n555-123-4567",
    "Regards,\nJane",
    "Best\n",
    "Best regards,\nJane Doe",
    "Kind regards,\nJane",
    "Sincerely,\nJane",
    "Cheers,\nJ.",
])
def test_sign_off_is_dropped_from_last_value(sign_off: str) -> None:
    body = f"Module: Grade Book\nDescription: Totals are wrong.\n\nSecond paragraph.\n\n{sign_off}\n"
    assert values(body)["Description"] == "Totals are wrong.\n\nSecond paragraph."


def test_closing_words_inside_text_or_long_paragraph_are_kept() -> None:
    kept_sentence = "Description: It broke.\n\nThanks for looking at this quickly\n"
    assert values(kept_sentence)["Description"] == "It broke.\n\nThanks for looking at this quickly"
    long_paragraph = "Description: It broke.\n\nThanks,\nline 2\nline 3\nline 4\nline 5\nline 6\nline 7\n"
    assert values(long_paragraph)["Description"].endswith("line 7")
    no_blank_line = "Description: It broke.\nThanks,\nJane\n"
    assert values(no_blank_line)["Description"] == "It broke.\nThanks,\nJane"


def test_crlf_and_trailing_blank_lines() -> None:
    assert values("Description: a\r\nb\r\n\r\n\r\nModule: Grade Book\r\n") == {
        "Description": "a\nb", "Module": "Grade Book"}


def test_no_labels_gives_only_preamble() -> None:
    parsed = parse_template("Hi, the grade book is broken.\n\nThanks,\nJane\n", LABELS)
    assert parsed.fields == ()
    assert parsed.preamble == "Hi, the grade book is broken."


def test_html_mail_converted_by_parse_message_parses() -> None:
    message = EmailMessage()
    message["From"] = "jane@district.org"
    message["Subject"] = "[Application Issue] totals"
    message.set_content(
        "<html><body><p>Hello,</p>"
        "<p><b>Subject:</b> x</p><p><b>Module:</b> Grade Book</p>"
        "<p><strong>Description:</strong><br>Totals are wrong.<br>Since Friday.</p>"
        "<ul><li>Priority: High</li></ul>"
        "<table><tr><td><b>Who is impacted?</b></td><td>teachers</td></tr></table>"
        "<p>Thanks,<br>Jane</p></body></html>", subtype="html")
    text = parse_message(message.as_bytes()).text
    parsed = parse_template(text, LABELS)
    got = {f.label: f.text for f in parsed.fields}
    assert got["Subject"] == "x"
    assert got["Module"] == "Grade Book"
    assert got["Description"] == "Totals are wrong.\nSince Friday."
    assert got["Priority"] == "High"
    assert parsed.preamble == "Hello,"
    assert got["Who is impacted?"] == "teachers"


def test_question_label_answered_without_colon() -> None:
    assert values("Who is impacted? All teachers\nWho is affected?\n") == {"Who is impacted?": "All teachers"}
    assert values("Module? Grade Book\n") == {}
