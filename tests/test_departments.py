"""Routing reaches a person: a department with an address is told of new cases and contact replies."""
from __future__ import annotations

import email
from email import policy as email_policy
from email.message import EmailMessage
from pathlib import Path

import pytest

from conftest import DATA, CapturingRelay, Intake, compose

ZACK = "Zack Morris <zack.morris@bayside.example>"
HOSTING = "hosting@district-support.example"
DEPARTMENT = f'[departments."Hosting Operations"]\naddress = "{HOSTING}"\n'
OUTAGE = DATA / "mail" / "iphone.eml"


@pytest.fixture
def routed(tmp_path: Path, database_url: str, capsys: pytest.CaptureFixture[str],
           relay: tuple[CapturingRelay, int]) -> Intake:
    instance = Intake(tmp_path, database_url, capsys, relay=relay, extra_config=DEPARTMENT)
    assert instance.run("contacts", "import", str(DATA / "contacts.csv")).code == 0
    return instance


def _received_by(intake: Intake, address: str) -> list[EmailMessage]:
    """What the real relay was handed for `address` (envelope recipients), oldest first."""
    assert intake.relay is not None
    return [email.message_from_bytes(raw, policy=email_policy.default)  # type: ignore[misc]
            for raw, rcpts in zip(intake.relay.received, intake.relay.recipients, strict=True) if address in rcpts]


def _text(message: EmailMessage) -> str:
    return " ".join(message.get_body(preferencelist=("plain",)).get_content().split())


def test_a_new_case_reaches_its_department_on_the_case_thread(routed: Intake) -> None:
    assert "case_created #1" in routed.run("ingest", str(OUTAGE)).out
    [notice] = _received_by(routed, HOSTING)
    assert notice["To"] == f"Hosting Operations <{HOSTING}>"
    assert notice["Subject"] == "[Case #1] Campus is down"
    assert notice["Auto-Submitted"] == "auto-generated"
    assert notice["In-Reply-To"] == "<9F8E7D6C-5B4A-4392-8170-6F5E4D3C2B1A@bayside.example>"
    text = _text(notice)
    assert "A new Report an Outage case has been routed to Hosting Operations: case #1, \"Campus is down\"." in text
    assert "Priority: Critical" in text and "Error Message: 503 Service Unavailable" in text
    assert "Zack Morris <zack.morris@bayside.example>" in text
    assert "No one at Bayside can reach Campus since 6:30 this morning" in text
    # The contact gets the acknowledgement only; the notice went to the department alone.
    assert all(rcpts == [HOSTING] for rcpts in routed.relay.recipients if HOSTING in rcpts)  # type: ignore[union-attr]
    [ack] = _received_by(routed, "zack.morris@bayside.example")
    assert "routed to Hosting Operations" in _text(ack)
    kinds = {m["kind"] for m in routed.outbox()}
    assert kinds == {"acknowledgement", "department_notice"}
    assert routed.last_outcome()["reasons"][-1] == "case created: Report an Outage"


def test_a_contact_reply_reaches_the_department(routed: Intake) -> None:
    routed.run("ingest", str(OUTAGE))
    [ack] = [m for m in routed.outbox() if m["kind"] == "acknowledgement"]
    reply = compose(ZACK, "Re: [Case #1] Campus is down", "It is back for staff, parents still get the 503.\n",
                    headers={"In-Reply-To": f"<{ack['message_id']}>", "References": f"<{ack['message_id']}>"})
    assert "comment_added" in routed.ingest(reply).out
    first, second = _received_by(routed, HOSTING)
    assert second["Subject"] == "[Case #1] Campus is down"
    assert first["Message-ID"] in second["References"]
    text = _text(second)
    assert "zack.morris@bayside.example replied on case #1, \"Campus is down\" (now open):" in text
    assert "It is back for staff, parents still get the 503." in text


def test_a_staff_comment_and_other_departments_send_no_notice(routed: Intake) -> None:
    routed.ingest(compose(ZACK, "[Ask a Question] Households", "Module: Census\nDescription: Where is it?\n"))
    assert routed.run("comment", "1", "--body", "Census > Reports > Households.").code == 0
    assert _received_by(routed, HOSTING) == []
    assert "department_notice" not in {m["kind"] for m in routed.outbox()}


def test_cases_lists_by_department(routed: Intake) -> None:
    routed.run("ingest", str(OUTAGE))
    routed.ingest(compose(ZACK, "[Ask a Question] Households", "Module: Census\nDescription: Where is it?\n"))
    listed = routed.run("cases", "--department", "hosting operations", "--json").json()
    assert [c["number"] for c in listed] == [1]  # type: ignore[union-attr,index]
    text = routed.run("cases", "--department", "Application Support").out
    assert "#2" in text and "#1 " not in text
    unknown = routed.run("cases", "--department", "Facilities")
    assert unknown.code == 2 and "no department named 'Facilities'; departments: Application Support" in unknown.err


@pytest.mark.parametrize("settings, error", [
    ('[departments."Facilities"]\naddress = "f@district-support.example"\n', "no case type is routed to 'Facilities'"),
    ('[departments."Training"]\naddress = "not an address"\n', "address must be one email address"),
    ('[departments."Training"]\nadress = "t@district-support.example"\n', "unknown setting(s) adress"),
    ('[departments."Training"]\naddress = "support@intake.example"\n', "is a support address"),
])
def test_a_department_setting_that_cannot_work_is_a_configuration_error(
        tmp_path: Path, database_url: str, capsys: pytest.CaptureFixture[str], settings: str, error: str) -> None:
    broken = Intake(tmp_path, database_url, capsys, extra_config=settings)
    ran = broken.run("cases")
    assert ran.code == 2 and error in ran.err, ran.err


def test_the_simple_form_still_routes(tmp_path: Path, database_url: str, capsys: pytest.CaptureFixture[str],
                                      relay: tuple[CapturingRelay, int]) -> None:
    settings = '[departments]\n"Report an Outage" = "Network Operations Center"\n' \
               '[departments."Network Operations Center"]\naddress = "noc@district-support.example"\n'
    instance = Intake(tmp_path, database_url, capsys, relay=relay, extra_config=settings)
    assert instance.run("contacts", "import", str(DATA / "contacts.csv")).code == 0
    instance.run("ingest", str(OUTAGE))
    assert instance.show(1)["department"] == "Network Operations Center"
    [notice] = _received_by(instance, "noc@district-support.example")
    assert notice["Subject"] == "[Case #1] Campus is down"


def test_a_department_address_that_is_a_contact_is_never_written_to(
        tmp_path: Path, database_url: str, capsys: pytest.CaptureFixture[str],
        relay: tuple[CapturingRelay, int]) -> None:
    kelly = "kelly.kapowski@bayside.example"  # a contact of the district, misconfigured as the department
    settings = f'[departments."Hosting Operations"]\naddress = "{kelly}"\n'
    instance = Intake(tmp_path, database_url, capsys, relay=relay, extra_config=settings)
    assert instance.run("contacts", "import", str(DATA / "contacts.csv")).code == 0
    assert "case_created #1" in instance.run("ingest", str(OUTAGE)).out
    assert _received_by(instance, kelly) == []
    assert "department_notice" not in {m["kind"] for m in instance.outbox()}
    assert (f"no notice to Hosting Operations: its address {kelly} is a contact's, and department notices never "
            "go to contacts") in instance.last_outcome()["reasons"]
