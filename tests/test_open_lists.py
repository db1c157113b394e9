"""Open lists: a Module we do not list is filed under Not Applicable; the lists come from config.toml."""
from __future__ import annotations

from pathlib import Path

import pytest

from conftest import DATA, CapturingRelay, Intake, compose

ZACK = "Zack Morris <zack.morris@bayside.example>"


def _question(module: str) -> bytes:
    return compose(ZACK, "[Ask a Question] Where is the enrollment history?", (
        f"Module: {module}\n"
        "Description: Where can I see a student's past enrollments across districts?\n"))


def _configured(tmp_path: Path, database_url: str, capsys: pytest.CaptureFixture[str],
                relay: tuple[CapturingRelay, int], extra: str) -> Intake:
    instance = Intake(tmp_path, database_url, capsys, relay=relay, extra_config=extra)
    assert instance.run("contacts", "import", str(DATA / "contacts.csv")).code == 0
    return instance


@pytest.mark.parametrize("module", ["Enrollment", "Calendar"])
def test_a_module_we_do_not_list_makes_a_case_under_not_applicable(intake: Intake, module: str) -> None:
    ran = intake.ingest(_question(module))
    assert "case_created" in ran.out, ran.out

    case = intake.show(1)
    assert case["module"] == case["fields"]["Module"] == "Not Applicable"
    assert case["fields_as_written"]["Module"] == module
    shown = intake.run("show", "1").out
    assert f"Module: Not Applicable (written: '{module}')" in shown

    text = intake.last_reply_prose()
    assert f"About the Module: we filed this under Not Applicable; you wrote '{module}'." in text
    assert "Module: Not Applicable" in text
    [sent] = intake.sent_mail()
    html = sent.get_body(preferencelist=("html",)).get_content()
    assert f"you wrote &#39;{module}&#39;" in html or f"you wrote '{module}'" in html


def test_a_listed_module_has_no_such_line(intake: Intake) -> None:
    intake.ingest(_question("census"))
    assert intake.show(1)["module"] == "Census"
    assert "About the Module" not in intake.last_reply_text()


def test_a_configured_module_list_is_honoured(tmp_path: Path, database_url: str, capsys: pytest.CaptureFixture[str],
                                               relay: tuple[CapturingRelay, int]) -> None:
    configured = _configured(tmp_path, database_url, capsys, relay,
                             '[case_types]\nmodules = ["Calendar", "Enrollment", "Grade Book"]\n')
    configured.ingest(_question("enrolment"))  # a close misspelling of a listed module
    assert configured.show(1)["module"] == "Enrollment"
    configured.ingest(_question("Census"))  # listed by default, not by this district
    assert configured.show(2)["module"] == "Not Applicable"
    assert configured.show(2)["fields_as_written"]["Module"] == "Census"

    configured.ingest(compose(ZACK, "template Ask a Question"))
    template = configured.last_reply_text()
    assert "one of Calendar; Enrollment; Grade Book; if yours is not listed, Not Applicable" in " ".join(
        template.split())
    assert "Attendance" not in template


def test_a_configured_technical_services_list_still_asks(tmp_path: Path, database_url: str,
                                                         capsys: pytest.CaptureFixture[str],
                                                         relay: tuple[CapturingRelay, int]) -> None:
    configured = _configured(tmp_path, database_url, capsys, relay,
                             '[case_types]\ntechnical_services_types = ["Custom Report", "Data Import"]\n')
    configured.ingest(compose(ZACK, "[Request Technical Services] A new report", (
        "Type: Custom Reprt card\nModule: Grade Book\nDescription: A report of missing grades per teacher.\n")))
    assert configured.last_outcome()["outcome"] == "needs_information"
    text = configured.last_reply_prose()
    assert "'Custom Reprt card' is not a Type we know. Did you mean Custom Report?" in text
    assert "Choose one of: Custom Report, Data Import" in text


def test_a_list_that_is_not_a_list_of_names_is_a_configuration_error(
        tmp_path: Path, database_url: str, capsys: pytest.CaptureFixture[str],
        relay: tuple[CapturingRelay, int]) -> None:
    broken = Intake(tmp_path, database_url, capsys, relay=relay, extra_config='[case_types]\nmodules = "Census"\n')
    ran = broken.run("cases")
    assert ran.code == 2 and "[case_types] modules must be a list of names" in ran.err


def test_closed_choices_ask_with_the_closest_suggestions(intake: Intake) -> None:
    intake.ingest(compose(ZACK, "[Server Access] Access for our analyst", (
        "Request Type: Reporting Server\nDescription: Our analyst needs to run SQL scripts.\n")))
    assert intake.last_outcome()["outcome"] == "needs_information"
    assert "Did you mean Server or SQL Server? Choose one of: Server, SQL Server, SSRS" in intake.last_reply_prose()


def test_free_text_fields_take_what_is_written(intake: Intake) -> None:
    intake.ingest(compose(ZACK, "[Request Training] Counselors", (
        "Request Type: Scheduling board training for counselors\n"
        "Preferred Training Date: 12/31/2099\n"
        "Description: Our four counselors need to learn the scheduling board.\n")))
    assert intake.show(1)["fields"]["Request Type"] == "Scheduling board training for counselors"


def test_a_gmail_question_about_enrollment_is_filed_under_not_applicable(intake: Intake) -> None:
    ran = intake.run("ingest", str(DATA / "mail" / "module-not-listed.eml"))
    assert "case_created #1" in ran.out, ran.out
    case = intake.show(1)
    assert (case["module"], case["fields_as_written"]["Module"]) == ("Not Applicable", "Enrollment")
    assert case["fields"]["Location within Product"] == "Student Information > General > Enrollments"
    assert case["description"].endswith("without losing the attendance?")  # the sign-off is not part of it
    text = intake.last_reply_prose()
    assert "About the Module: we filed this under Not Applicable; you wrote 'Enrollment'." in text
    assert "Thanks, Kelly" not in text
