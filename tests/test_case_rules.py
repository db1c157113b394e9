"""Every rule of the seed and of authorization, through the reply a person gets when it fails."""
from __future__ import annotations

from conftest import Intake, compose, future, past

ZACK = "Zack Morris <zack.morris@bayside.example>"
SLATER = "Albert Slater <ac.slater@bayside.example>"  # Authorized, no Schema Bootcamp
KELLY = "Kelly Kapowski <kelly.kapowski@bayside.example>"  # Technical
SCREECH = "Samuel Powers <screech.powers@bayside.example>"  # Read Only
LISA = "Lisa Turtle <lisa.turtle@bayside.example>"  # inactive
BELDING = "Richard Belding <richard.belding@bayside.example>"  # two accounts


def _outcome(intake: Intake, raw: bytes, expected: str) -> str:
    ran = intake.ingest(raw)
    assert ran.code == 0, ran.err
    last = intake.last_outcome()
    assert last["outcome"] == expected, (last, ran.out)
    return intake.last_reply_prose()


def _restore(permission: str | None, lost: str) -> str:
    body = ("Case Type: Data Restore\nModule: Attendance\n"
            f"Approximate Date of Loss: {lost}\nReason for Restore: Deleted by mistake\n"
            "Description: Restore the attendance of period 3.\n")
    return body + (f"Written Permission: {permission}\n" if permission is not None else "")


def test_critical_outside_outage_is_made_high_and_says_why(intake: Intake) -> None:
    reply = _outcome(intake, compose(ZACK, "Grades will not post", (
        "Case Type: Ask a Question\nPriority: Critical\nModule: Grade Book\n"
        "Description: How do we post grades early?\n")), "case_created")
    assert intake.cases()[-1]["priority"] == "High"
    assert "Critical" in reply and "Report an Outage" in reply


def test_data_restore_needs_written_permission(intake: Intake) -> None:
    reply = _outcome(intake, compose(ZACK, "Restore", _restore(None, past(2))), "needs_information")
    assert "Written Permission is required" in reply
    assert intake.cases() == []


def test_data_restore_permission_must_affirm(intake: Intake) -> None:
    reply = _outcome(intake, compose(ZACK, "Restore", _restore("No", past(2))), "needs_information")
    assert "permission" in reply.lower()
    assert intake.cases() == []


def test_data_restore_beyond_thirty_days_is_refused(intake: Intake) -> None:
    reply = _outcome(intake, compose(ZACK, "Restore", _restore("Yes, I give permission", past(45))), "refused")
    assert "retained for 30 days" in reply and "45 days ago" in reply


def test_sql_server_access_needs_schema_bootcamp(intake: Intake) -> None:
    reply = _outcome(intake, compose(SLATER, "SQL access", (
        "Case Type: Server Access\nRequest Type: sql server\nDescription: To run SQL scripts.\n")), "refused")
    assert "Schema Bootcamp" in reply and "Albert Slater" in reply


def test_ssrs_access_does_not_need_bootcamp(intake: Intake) -> None:
    _outcome(intake, compose(SLATER, "SSRS access", (
        "Case Type: Server Access\nRequest Type: SSRS\nDescription: Access to build reports.\n")), "case_created")


def test_training_dates_must_be_in_the_future(intake: Intake) -> None:
    reply = _outcome(intake, compose(ZACK, "Training", (
        "Case Type: Request Training\nRequest Type: Counselor scheduling\n"
        f"Preferred Training Date: {past(3)}\nDescription: Scheduling training for counselors.\n")),
        "needs_information")
    assert "Preferred Training Date must be a date after today" in reply
    assert "Counselor scheduling" in reply  # the template comes back pre-filled


def test_consult_dates_must_be_in_the_future(intake: Intake) -> None:
    reply = _outcome(intake, compose(ZACK, "Consult", (
        "Case Type: Request Consulting\n"
        f"Preferred Consult Date: {future(5)}\nPreferred Consult Date 2: {past(1)}\n"
        "Description: Scheduling consult.\n")), "needs_information")
    assert "Preferred Consult Date 2 must be a date after today" in reply


def test_unknown_sender_is_refused_and_told_how_to_become_authorized(intake: Intake) -> None:
    reply = _outcome(intake, compose("Stranger <someone@elsewhere.example>", "Help", (
        "Case Type: Ask a Question\nModule: Census\nDescription: Hello\n")), "refused")
    assert "not a support contact" in reply and "Modify Support Contacts" in reply


def test_read_only_contact_is_refused(intake: Intake) -> None:
    reply = _outcome(intake, compose(SCREECH, "Help", (
        "Case Type: Ask a Question\nModule: Census\nDescription: Hello\n")), "refused")
    assert "Read Only" in reply


def test_inactive_contact_is_refused(intake: Intake) -> None:
    reply = _outcome(intake, compose(LISA, "Help", (
        "Case Type: Ask a Question\nModule: Census\nDescription: Hello\n")), "refused")
    assert "no longer an active" in reply


def test_technical_contact_may_not_request_server_access(intake: Intake) -> None:
    reply = _outcome(intake, compose(KELLY, "Access", (
        "Case Type: Server Access\nRequest Type: Server\nDescription: Server access please\n")), "refused")
    assert "Technical contacts may not submit Server Access cases" in reply


def test_technical_contact_may_not_request_billable_work(intake: Intake) -> None:
    reply = _outcome(intake, compose(KELLY, "Consult", (
        f"Case Type: Request Consulting\nPreferred Consult Date: {future(9)}\nDescription: Consult\n")), "refused")
    assert "may be billable" in reply


def test_technical_contact_may_report_application_issues(intake: Intake) -> None:
    _outcome(intake, compose(KELLY, "Attendance", (
        "Case Type: Ask a Question\nModule: Attendance\nDescription: How do I mark a tardy?\n")), "case_created")


def test_contact_of_several_accounts_must_name_one(intake: Intake) -> None:
    body = "Case Type: Ask a Question\nModule: Census\nDescription: Where is the household report?\n"
    reply = _outcome(intake, compose(BELDING, "Households", body), "needs_information")
    assert "Bayside School (TESTING)" in reply and "Valley High District" in reply
    _outcome(intake, compose(BELDING, "Households", "Account: valley high\n" + body), "case_created")
    assert intake.cases()[-1]["account"] == "Valley High District"


def test_submitting_on_behalf_of_another_contact_keeps_the_submitter(intake: Intake) -> None:
    _outcome(intake, compose(ZACK, "Tardies", (
        "Case Type: Ask a Question\nContact: Kelly Kapowski\nModule: Attendance\nDescription: Tardy codes?\n")),
        "case_created")
    case = intake.cases()[-1]
    assert case["contact"] == "kelly.kapowski@bayside.example"
    assert case["submitted_by"] == "zack.morris@bayside.example"
    assert intake.outbox()[-1]["to"] == ["zack.morris@bayside.example", "kelly.kapowski@bayside.example"]


def test_on_behalf_of_someone_outside_the_account(intake: Intake) -> None:
    reply = _outcome(intake, compose(ZACK, "Tardies", (
        "Case Type: Ask a Question\nContact: jessie.spano@valley.example\nModule: Attendance\n"
        "Description: Tardy codes?\n")), "needs_information")
    assert "not an active contact of Bayside School (TESTING)" in reply


def test_missing_required_fields_come_back_with_a_prefilled_template(intake: Intake) -> None:
    reply = _outcome(intake, compose(ZACK, "Attendance broken", (
        "Case Type: Application Issue\nModule: Attendance\n"
        "Description: Teachers cannot take attendance in period 2.\n")), "needs_information")
    for label in ("Steps to Reproduce", "Expected Results", "Who is impacted?"):
        assert f"{label} is required" in reply
    assert "Teachers cannot take attendance in period 2." in reply  # pre-filled
    assert "Module: Attendance" in reply


def test_bad_field_values_are_explained(intake: Intake) -> None:
    reply = _outcome(intake, compose(ZACK, "Question", (
        "Case Type: Ask a Question\nModule: Census\nPriority: Basket Weaving\nDescription: ?\n")),
        "needs_information")
    assert "'Basket Weaving' is not a Priority we know" in reply


def test_misspelt_values_are_matched_forgivingly(intake: Intake) -> None:
    _outcome(intake, compose(ZACK, "Question", (
        "case type: ask a qestion\nMODULE:  grdae book\npriority: low\nDescription: How do I weight tasks?\n")),
        "case_created")
    case = intake.cases()[-1]
    assert (case["case_type"], case["fields"]["Module"], case["priority"]) == ("Ask a Question", "Grade Book", "Low")
    assert intake.show(case["number"])["fields_as_written"]["Module"] == "grdae book"
