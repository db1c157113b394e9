"""Each of the ten case types, from a realistic email to a stored, routed, acknowledged case."""
from __future__ import annotations

from conftest import DATA, Intake, compose, future, past

ZACK = "Zack Morris <zack.morris@bayside.example>"


def _created(intake: Intake, raw: bytes) -> dict:
    ran = intake.ingest(raw)
    assert ran.code == 0, ran.out + ran.err
    assert "case_created" in ran.out, ran.out
    return intake.cases()[-1]


def test_seed_case_example_end_to_end(intake: Intake) -> None:
    ran = intake.run("ingest", str(DATA / "seed_case_example.eml"))
    assert ran.code == 0 and "case_created #1" in ran.out, ran.out

    case = intake.show(1)
    assert case["case_type"] == "Application Issue"
    assert case["account"] == "Bayside School (TESTING)"
    assert case["contact"] == case["submitted_by"] == "zack.morris@bayside.example"
    assert case["subject"] == "Teachers unable to post grades"
    assert case["priority"] == "Medium"
    assert case["department"] == "Application Support"
    assert case["billable"] is False
    assert case["description"].startswith("None of the English Literature teachers at 21-22 Campus High School")
    assert case["description"].endswith("Example: Anne Shirley, English Lit 1100-1, Quarter 1, Quarter grading task")
    fields = case["fields"]
    assert fields["Module"] == "Grade Book"
    assert fields["Steps to Reproduce"].splitlines() == [
        "1. Log in as teacher Anne Shirley",
        "2. In Campus Learning, go to Grade Book for 1100-1",
        "3. Select Q1, Quarter grade task",
        "4. Click Post. Note that it is greyed out and cannot be pushed.",
    ]
    assert fields["Environment Changes"] == "None"
    assert fields["Who is impacted?"] == "English Lit 1100 teachers"
    assert fields["Issue Began"] == "2021-09-07"
    assert fields.get("Error Message") in (None, "")
    assert fields["Expected Results"] == "Post button to be active"  # the sign-off is not part of it

    [ack] = intake.outbox()
    assert ack["to"] == ["zack.morris@bayside.example"]
    assert ack["subject"] == "[Case #1] Teachers unable to post grades"
    assert ack["in_reply_to"] == "seed-example-0001@bayside.example"
    assert ack["case"] == 1 and ack["status"] == "sent"
    [sent] = intake.sent_mail()
    assert sent["Auto-Submitted"] == "auto-replied"
    assert sent["In-Reply-To"] == "<seed-example-0001@bayside.example>"
    assert "seed-example-0001@bayside.example" in sent["References"]
    text = sent.get_body(preferencelist=("plain",)).get_content()
    assert "Application Support" in text and "Post button to be active" in text
    assert sent.get_body(preferencelist=("html",)) is not None
    inbound = [m for m in case["messages"] if m["direction"] == "inbound"]
    assert inbound[0]["outcome"] == "case_created" and inbound[0]["reasons"]
    outbound = [m for m in case["messages"] if m["direction"] == "outbound"]
    assert outbound[0]["message_id"] == ack["message_id"]


def test_ask_a_question(intake: Intake) -> None:
    case = _created(intake, compose(ZACK, "Snow day setup", (
        "Case Type: Ask a Question\n"
        "Priority: Low\n"
        "Module: Attendance\n"
        "Location within Product: Attendance > Calendar > Days\n"
        "Description: What is the best way to set up a snow day so that attendance is not taken?\n")))
    assert case["case_type"] == "Ask a Question"
    assert case["priority"] == "Low"
    assert case["subject"] == "Snow day setup"  # from the email subject
    assert case["fields"]["Location within Product"] == "Attendance > Calendar > Days"
    assert case["department"] == "Application Support"


def test_report_an_outage_may_be_critical(intake: Intake) -> None:
    case = _created(intake, compose(ZACK, "[Report an Outage] Campus is down", (
        "Priority: Critical\n"
        "Description: No user can reach Infinite Campus since 7:10 this morning.\n"
        "Error Message: 503 Service Unavailable\n")))
    assert case["case_type"] == "Report an Outage"
    assert case["priority"] == "Critical"
    assert case["subject"] == "Campus is down"
    assert case["fields"]["Error Message"] == "503 Service Unavailable"
    assert case["department"] == "Hosting Operations"


def test_request_training(intake: Intake) -> None:
    case = _created(intake, compose(ZACK, "Campus Learning training", (
        "Case Type: Request Training\n"
        "Request Type: Campus Learning training for teachers\n"
        f"Preferred Training Date: {future(20)}\n"
        f"Preferred Training Date 2: {future(21)}\n"
        f"Preferred Training Date 3: {future(22)}\n"
        "Description: Our 40 high school teachers need an introduction to Campus Learning.\n")))
    assert case["case_type"] == "Request Training"
    assert case["department"] == "Training"
    assert len({case["fields"][f"Preferred Training Date{n}"] for n in ("", " 2", " 3")}) == 3


def test_data_restore(intake: Intake) -> None:
    case = _created(intake, compose(ZACK, "Restore deleted enrollment", (
        "Case Type: Data Restore\n"
        "Module: Student Information\n"
        f"Approximate Date of Loss: {past(3)}\n"
        "Reason for Restore: A counselor end-dated and then deleted the enrollment of a student by mistake.\n"
        "Written Permission: Yes, I give written permission to restore this data.\n"
        "Description: Please restore the 24-25 enrollment of student #12345.\n")))
    assert case["case_type"] == "Data Restore"
    assert case["fields"]["Written Permission"].startswith("Yes")
    assert case["department"] == "Hosting Operations"


def test_server_issue(intake: Intake) -> None:
    case = _created(intake, compose(ZACK, "Reporting server errors", (
        "Case Type: Server Issue\n"
        "Module: Reports\n"
        f"Issue Began: {past(1)}\n"
        "Error Message: The report server returned an internal error (rsInternalError)\n"
        "Description: SSRS reports fail for every user since yesterday.\n")))
    assert case["case_type"] == "Server Issue"
    assert case["fields"]["Error Message"].startswith("The report server")


def test_server_access_sql_server_with_bootcamp(intake: Intake) -> None:
    case = _created(intake, compose(ZACK, "SQL access for reporting", (
        "Case Type: Server Access\n"
        "Request Type: SQL Server\n"
        "Description: I need read access to the database to run SQL scripts for state reporting.\n")))
    assert case["case_type"] == "Server Access"
    assert case["fields"]["Request Type"] == "SQL Server"


def test_modify_support_contacts(intake: Intake) -> None:
    case = _created(intake, compose(ZACK, "Replace our technical contact", (
        "Case Type: Modify Support Contacts\n"
        "Request Type: Replace\n"
        "Contact First Name: Stacey\n"
        "Contact Last Name: Carosi\n"
        "Contact Email: stacey.carosi@bayside.example\n"
        "Contact Title: Network Administrator\n"
        "Contact Primary Phone: (555) 201-0199\n"
        "Contact Secondary Phone: 555.201.0200 ext 12\n"
        "Contact Type: Technical\n"
        "Area of Responsibility: SIS, Finance, Online Payments\n"
        "Contact Replacement Name: Kelly Kapowski\n"
        "Description: Kelly retires at the end of the month; Stacey replaces her.\n")))
    fields = case["fields"]
    assert case["case_type"] == "Modify Support Contacts"
    assert case["department"] == "Client Services"
    assert fields["Request Type"] == "Replace"
    assert fields["Contact Email"] == "stacey.carosi@bayside.example"
    assert fields["Contact Type"] == "Technical"
    assert fields["Area of Responsibility"] == ["SIS", "Finance", "Online Payments"]
    assert fields["Contact Replacement Name"] == "Kelly Kapowski"
    assert fields["Contact Primary Phone"] == "(555) 201-0199"


def test_request_consulting_is_billable(intake: Intake) -> None:
    case = _created(intake, compose(ZACK, "Standards-based grading consult", (
        "Case Type: Request Consulting\n"
        f"Preferred Consult Date: {future(10)}\n"
        f"Preferred Consult Date 2: {future(11)}\n"
        f"Preferred Consult Date 3: {future(12)}\n"
        "Description: We would like guidance on moving our elementary schools to standards-based grading.\n")))
    assert case["case_type"] == "Request Consulting"
    assert case["billable"] is True
    assert case["department"] == "Business Consulting"
    assert "billable" in intake.last_reply_text().lower()


def test_request_technical_services(intake: Intake) -> None:
    case = _created(intake, compose(ZACK, "Custom transcript", (
        "Case Type: Request Technical Services\n"
        "Type: Custom report card\n"
        "Module: Transcripts\n"
        f"Desired Completion Date: {future(60)}\n"
        "Description: We need a custom transcript layout for our new graduation requirements.\n")))
    assert case["case_type"] == "Request Technical Services"
    assert case["fields"]["Type"] == "Custom Report, Report Card, or Transcript"
    assert case["billable"] is True
    assert case["department"] == "Technical Services"
