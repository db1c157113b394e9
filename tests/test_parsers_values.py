"""parsers.values: one field's text typed by its schema Field, forgiving but honest."""
from __future__ import annotations

import datetime as dt

import pytest

from parsers.values import Coerced, coerce, match_choice
from routing import schema
from routing.schema import Field, FieldKind

MODULE = schema.MODULE
CASE_TYPE = schema.CASE_TYPE
AREAS = schema.AREA_OF_RESPONSIBILITY
ISSUE_BEGAN = schema.ISSUE_BEGAN
CONTACT_EMAIL = schema.CONTACT_EMAIL
PHONE = schema.CONTACT_PRIMARY_PHONE
PERMISSION = schema.WRITTEN_PERMISSION


def accepted(field: Field, text: str) -> object:
    result = coerce(field, text)
    assert result.error is None, result.error
    assert result.original == text
    return result.value


def refused(field: Field, text: str) -> str:
    result = coerce(field, text)
    assert result.value is None
    assert result.error is not None
    return result.error


@pytest.mark.parametrize("field", [MODULE, AREAS, ISSUE_BEGAN, CONTACT_EMAIL, PHONE, PERMISSION, schema.SUBJECT])
def test_empty_text_is_no_value_and_no_error(field: Field) -> None:
    assert coerce(field, "  \n ") == Coerced(None, "  \n ", None)


def test_text_and_multiline_are_stripped() -> None:
    assert accepted(schema.SUBJECT, "  Totals wrong \n") == "Totals wrong"
    assert accepted(schema.DESCRIPTION, "\nline one\n\nline two\n\n") == "line one\n\nline two"


@pytest.mark.parametrize("text, choice", [
    ("Grade Book", "Grade Book"),
    ("grade book", "Grade Book"),
    ("GRADE-BOOK.", "Grade Book"),
    ("gradebook", "Grade Book"),
    ("Grdae Book", "Grade Book"),
    ("Attendence", "Attendance"),
    ("n/a", "Not Applicable"),
    ("data extract  utility", "Data Extract Utility"),
])
def test_enum_matches_forgivingly(text: str, choice: str) -> None:
    assert accepted(MODULE, text) == choice


def test_enum_note_says_what_was_read() -> None:
    assert coerce(MODULE, "gradebook").note == "read 'gradebook' as 'Grade Book'"
    assert coerce(MODULE, "grade book").note is None


def test_case_type_alias_with_misspelling() -> None:
    assert accepted(CASE_TYPE, "Campus Aplication") == "Application Issue"
    assert accepted(CASE_TYPE, "restore") == "Data Restore"
    assert accepted(schema.CONTACT_TYPE, "read-only") == "Read Only"


@pytest.mark.parametrize("text", ["Enrollment", "Calendar", "Grdae Bok", "Gradebook and Attendance"])
def test_a_module_we_do_not_list_is_filed_under_not_applicable(text: str) -> None:
    result = coerce(MODULE, text)
    assert (result.value, result.error, result.original) == ("Not Applicable", None, text)
    assert result.note == f"'{text}' is not listed; filed under Not Applicable"


@pytest.mark.parametrize("field, text, suggested", [
    (schema.CONTACT_TYPE, "Authorised", "Authorized"),
    (schema.PRIORITY, "Hihg", "High"),
    (schema.SERVER_ACCESS_REQUEST_TYPE, "SQL Srv", "SQL Server"),
    (schema.TECHNICAL_SERVICES_TYPE, "Custom Reprot", "Custom Report, Report Card, or Transcript"),
])
def test_a_closed_choice_asks_with_the_closest_suggestions(field: Field, text: str, suggested: str) -> None:
    result = coerce(field, text)
    if result.value is not None:  # close enough to be read as the choice: nothing to ask
        assert result.value == suggested
        return
    assert result.error is not None and result.error.startswith(f"'{text}' is not a {field.label} we know.")
    assert f"Did you mean {suggested}" in result.error
    assert "Choose one of: " + ", ".join(field.choices) in result.error


def test_a_closed_choice_with_nothing_close_lists_every_choice() -> None:
    error = refused(schema.CONTACT_TYPE, "Banana")
    assert "Did you mean" not in error
    assert error.endswith("Choose one of: Authorized, Technical, Read Only")


def test_free_text_fields_take_what_is_written() -> None:
    assert accepted(schema.APPLICATION_TYPE, "Campus Application") == "Campus Application"
    assert accepted(schema.TRAINING_REQUEST_TYPE, "Counselor scheduling training") == "Counselor scheduling training"
    assert accepted(schema.TRAINING_REQUEST_TYPE, "campus learning") == "Campus Learning"  # a suggestion, as listed


def test_match_choice() -> None:
    assert match_choice("high", schema.PRIORITIES) == "High"
    assert match_choice("Hight", schema.PRIORITIES) == "High"
    assert match_choice("urgent!!", schema.PRIORITIES, {"Urgent": "Critical"}) == "Critical"
    assert match_choice("Banana", schema.PRIORITIES) is None
    assert match_choice("", schema.PRIORITIES) is None
    assert match_choice("Low", schema.PRIORITIES, {"Low": "Nope"}) == "Low"


@pytest.mark.parametrize("text, choices", [
    ("SIS", ["SIS"]),
    ("SIS, Finance and Food Service", ["SIS", "Finance", "Food Service"]),
    ("SIS; finance", ["SIS", "Finance"]),
    ("SIS/Finance", ["SIS", "Finance"]),
    ("SIS, and Human Resources", ["SIS", "Human Resources"]),
    ("- SIS\n- Human Resources\n• online payments", ["SIS", "Human Resources", "Online Payments"]),
    ("SIS, SIS", ["SIS"]),
    ("Finace", ["Finance"]),
])
def test_multi_choice_splits_and_matches_each_part(text: str, choices: list[str]) -> None:
    assert accepted(AREAS, text) == choices


def test_multi_choice_keeps_choices_containing_separators_whole() -> None:
    field = Field("Kinds", FieldKind.MULTI_CHOICE, choices=schema.TECHNICAL_SERVICES_TYPES)
    assert accepted(field, "Data Import/Export/Modification, Other Services") == [
        "Data Import/Export/Modification", "Other Services"]
    assert accepted(field, "Custom Report, Report Card, or Transcript") == [
        "Custom Report, Report Card, or Transcript"]


def test_multi_choice_names_unknown_parts() -> None:
    error = refused(AREAS, "SIS; Bananas, Finance, Pears")
    assert "'Bananas' and 'Pears'" in error
    assert "Choose one or more of: SIS, Food Service" in error


@pytest.mark.parametrize("text", [
    "09/07/2021", "9/7/21", "2021-09-07", "Sep 7 2021", "September 7, 2021", "7 September 2021",
    "Tuesday, September 7, 2021", "around 9/7/2021", "on September 7th, 2021",
])
def test_dates_in_common_forms(text: str) -> None:
    assert accepted(ISSUE_BEGAN, text) == dt.date(2021, 9, 7)


def test_impossible_date_is_refused_with_how_to_write_it() -> None:
    assert refused(ISSUE_BEGAN, "31/31/2021") == (
        "'31/31/2021' is not a date we can read; write it like 09/07/2021 or 2021-09-07")
    assert "not a date" in refused(ISSUE_BEGAN, "02/30/2021")


@pytest.mark.parametrize("text", [
    "asap", "next week sometime", "The teachers noticed it after the 3rd update",
    "September 7", "Tuesday", "10:30", "2021", "I think it was the 7th, not sure",
])
def test_text_without_a_whole_date_is_refused(text: str) -> None:
    assert "is not a date we can read" in refused(ISSUE_BEGAN, text)


def test_missing_year_is_named() -> None:
    assert "has no year" in refused(ISSUE_BEGAN, "September 7")


@pytest.mark.parametrize("text, address", [
    ("jane@district.org", "jane@district.org"),
    ("Jane.Doe@District.K12.US", "jane.doe@district.k12.us"),
    ("Jane Doe <Jane@District.org>", "jane@district.org"),
    ("mailto:jane@district.org", "jane@district.org"),
])
def test_email_accepts_one_address(text: str, address: str) -> None:
    assert accepted(CONTACT_EMAIL, text) == address


@pytest.mark.parametrize("text", ["jane", "jane@", "jane@district", "a@b.org, c@d.org", "jane at district dot org"])
def test_email_refuses_anything_else(text: str) -> None:
    assert "write it like name@district.org" in refused(CONTACT_EMAIL, text)


@pytest.mark.parametrize("text", [
    "555-123-4567", "(555) 123-4567", "+1 555 123 4567 x89", "555.123.4567 ext. 12", "5551234", "+44 20 7946 0958",
])
def test_phone_keeps_text_as_written(text: str) -> None:
    assert accepted(PHONE, text) == text


@pytest.mark.parametrize("text", ["123", "call me", "555-CALL-NOW", "1234567890123456", "555-1234 or 555-9876"])
def test_phone_refuses_anything_else(text: str) -> None:
    assert "is not a phone number we can read" in refused(PHONE, text)


@pytest.mark.parametrize("text", [
    "Yes", "yes.", "Yes, I give written permission to restore", "I authorize the restore",
    "approved", "Granted", "I give permission to restore this data",
])
def test_consent_affirms(text: str) -> None:
    assert accepted(PERMISSION, text) == text


@pytest.mark.parametrize("text", [
    "No", "n/a", "N/A", "not yet", "I do not give permission", "I don't authorize this", "maybe", "ask my boss",
])
def test_consent_refused_says_written_permission_is_required(text: str) -> None:
    error = refused(PERMISSION, text)
    assert "written permission" in error
    assert "Yes, I give written permission to restore this data" in error


def test_abbreviated_choice_is_matched_when_only_one_choice_fits() -> None:
    assert match_choice("Student Info", MODULE.choices) == "Student Information"
    assert match_choice("Sched", MODULE.choices) == "Scheduling"
    assert match_choice("Grade", MODULE.choices) is None  # Grade Book, or Grading and Standards?


def test_unknown_choice_suggests_the_closest() -> None:
    error = coerce(schema.AREA_OF_RESPONSIBILITY, "SIS, Food Svc").error
    assert error is not None and error.startswith("'Food Svc' is not one of the Area of Responsibility choices "
                                                  "we know. Did you mean Food Service for 'Food Svc'?")
    error = coerce(schema.CONTACT_TYPE, "Techncal staff").error
    assert error is not None and "Did you mean Technical?" in error
