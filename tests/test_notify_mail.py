"""Incident and maintenance mail reaches exactly the contacts in scope, one message each, threaded.

Driven through the command line against both databases; the mail is what a
real aiosmtpd relay on loopback received.
"""
from __future__ import annotations

from conftest import Intake
from notify_helpers import (
    BAYSIDE,
    BAYSIDE_NOTIFIED,
    INACTIVE,
    READ_ONLY,
    VALLEY,
    VALLEY_NOTIFIED,
    add_contacts,
    configure,
    notice_mail,
    recipients,
    set_bouncing,
    text_of,
)

ALL_NOTIFIED = BAYSIDE_NOTIFIED | VALLEY_NOTIFIED


def _new(intake: Intake, before: int) -> list:
    return notice_mail(intake)[before:]


def test_incident_update_resolve_mail_each_contact_in_scope_once_per_step_threaded(intake: Intake) -> None:
    posted = intake.run("notify", "incident", "Digicert Incident", "--body", "Certificates are being reissued.",
                        "--accounts", BAYSIDE, "--json")
    assert posted.code == 0, posted.err
    notice = posted.json()
    assert notice["recipients"] == len(BAYSIDE_NOTIFIED) and not notice["draft"]
    first = notice_mail(intake)
    assert recipients(first) == {address: 1 for address in BAYSIDE_NOTIFIED}

    assert intake.run("notify", "update", str(notice["id"]), "--body", "All customer domains updated.").code == 0
    updates = _new(intake, len(first))
    resolved = intake.run("notify", "resolve", str(notice["id"]), "--body", "Certificates replaced.", "--json")
    assert resolved.code == 0 and resolved.json()["recipients"] == len(BAYSIDE_NOTIFIED)
    resolutions = _new(intake, len(first) + len(updates))
    for step in (updates, resolutions):
        assert recipients(step) == {address: 1 for address in BAYSIDE_NOTIFIED}

    root_of = {m["To"].addresses[0].addr_spec: m["Message-ID"] for m in first}
    for message in updates + resolutions:
        root = root_of[message["To"].addresses[0].addr_spec]
        assert message["In-Reply-To"] == root and root in message["References"]
        assert message["Subject"] == first[0]["Subject"]  # one conversation in every mail client
    for message in first + updates + resolutions:
        assert message["Auto-Submitted"] == "auto-generated" and message["Precedence"] == "bulk"
        assert message["List-Id"] and message["List-Unsubscribe"] is None  # incident mail is not unsubscribed from
    assert "UPDATE: All customer domains updated." in text_of(updates[0])
    assert "RESOLVED: Certificates replaced." in text_of(resolutions[0])
    assert "a follow-up phone call is not necessary" in text_of(first[0]).replace("\n", " ")

    shown = intake.run("notify", "show", str(notice["id"]), "--json").json()
    assert shown["status"] == "resolved" and shown["closed"]
    assert [(s["kind"], s["recipients"], s["mail"]) for s in shown["steps"]] == [
        (kind, len(BAYSIDE_NOTIFIED), {"sent": len(BAYSIDE_NOTIFIED)}) for kind in ("posted", "update", "resolved")]
    assert shown["accounts_affected"] == [BAYSIDE]
    assert intake.run("notify", "list", "--json").json() == []
    assert [n["id"] for n in intake.run("notify", "list", "--closed", "--json").json()] == [notice["id"]]


def test_account_scope(intake: Intake) -> None:
    ran = intake.run("notify", "incident", "Valley outage", "--body", "Valley High cannot sign in.",
                     "--accounts", VALLEY.lower())
    assert ran.code == 0, ran.err
    assert recipients(notice_mail(intake)) == {address: 1 for address in VALLEY_NOTIFIED}


def test_every_account_when_none_named_and_no_one_twice(intake: Intake) -> None:
    assert intake.run("notify", "incident", "Campus down", "--body", "Investigating.").code == 0
    # Richard Belding is a contact of both districts: one message.
    assert recipients(notice_mail(intake)) == {address: 1 for address in ALL_NOTIFIED}


def test_area_scope_and_contacts_without_areas_get_everything(intake: Intake) -> None:
    add_contacts(intake, f"{VALLEY},no.areas@valley.example,Nora,Areas,Clerk,,,Technical,,,yes",
                 f"{VALLEY},food@valley.example,Fred,Food,Cook,,,Authorized,Food Service,,yes")
    ran = intake.run("notify", "incident", "State reporting down", "--body", "State Edition sync fails.",
                     "--areas", "state edition", "--json")
    assert ran.code == 0, ran.err
    got = set(recipients(notice_mail(intake)))
    assert got == {"jessie.spano@valley.example", "no.areas@valley.example"}
    unknown = intake.run("notify", "incident", "X", "--body", "Y", "--areas", "Payroll")
    assert unknown.code == 2 and "Payroll" in unknown.err and "Food Service" in unknown.err


def test_read_only_contacts_only_when_configured(intake: Intake) -> None:
    assert intake.run("notify", "incident", "One", "--body", "First.", "--accounts", BAYSIDE).code == 0
    assert READ_ONLY not in recipients(notice_mail(intake))
    configure(intake, "include_read_only = true")
    before = len(notice_mail(intake))
    assert intake.run("notify", "incident", "Two", "--body", "Second.", "--accounts", BAYSIDE).code == 0
    got = recipients(_new(intake, before))
    assert READ_ONLY in got and INACTIVE not in got


def test_a_bouncing_contact_is_skipped(intake: Intake) -> None:
    set_bouncing(intake, "kelly.kapowski@bayside.example")
    ran = intake.run("notify", "incident", "Slow", "--body", "Pages are slow.", "--accounts", BAYSIDE, "--json")
    assert ran.json()["recipients"] == len(BAYSIDE_NOTIFIED) - 1
    assert set(recipients(notice_mail(intake))) == BAYSIDE_NOTIFIED - {"kelly.kapowski@bayside.example"}


def test_drafts_send_nothing_until_published(intake: Intake) -> None:
    ran = intake.run("notify", "incident", "Draft", "--body", "Maybe.", "--accounts", BAYSIDE, "--draft")
    assert ran.code == 0 and f"would reach {len(BAYSIDE_NOTIFIED)} contact(s)" in ran.out
    notice_id = intake.run("notify", "list", "--json").json()[0]["id"]
    assert notice_mail(intake) == [] and intake.outbox() == []
    refused = intake.run("notify", "update", str(notice_id), "--body", "More.")
    assert refused.code == 2 and "publish it first" in refused.err
    assert intake.run("notify", "update", str(notice_id), "--body", "More.", "--draft").code == 0
    assert notice_mail(intake) == []
    preview = intake.run("notify", "preview", str(notice_id), "--to", "zack.morris@bayside.example", "--json").json()
    assert preview["to"] == "zack.morris@bayside.example" and "More." in preview["text"]
    assert notice_mail(intake) == []

    published = intake.run("notify", "publish", str(notice_id), "--json").json()
    assert [s["kind"] for s in published["steps"]] == ["posted", "update"]
    assert recipients(notice_mail(intake)) == {address: 2 for address in BAYSIDE_NOTIFIED}
    again = intake.run("notify", "publish", str(notice_id))
    assert again.code == 2 and "no draft" in again.err


def test_command_line_text_is_terminal_safe(intake: Intake) -> None:
    ran = intake.run("notify", "incident", "Bell\x1b[31m", "--body", "Red\x07text", "--draft")
    assert ran.code == 0
    listed = intake.run("notify", "list")
    assert "\x1b" not in listed.out and "\\x1b" in listed.out
    shown = intake.run("notify", "show", "1")
    assert "\x07" not in shown.out and "\\x07" in shown.out


def test_the_readme_worked_examples_say_what_the_readme_says(intake: Intake) -> None:
    import re
    import shlex

    from conftest import REPO
    section = (REPO / "README.md").read_text(encoding="utf-8").split("## Notifications", 1)[1].split("\n## ", 1)[0]
    checked = 0
    for block in re.findall(r"```sh\n(.*?)```", section, flags=re.S):
        lines = block.replace("\\\n", " ").splitlines()
        for index, line in enumerate(lines):
            if not line.startswith("$ intake notify ") or "--resolve-linked" in line:
                continue
            command = shlex.split(line[len("$ intake "):].split("  #")[0])
            ran = intake.run(*command)
            assert ran.code == 0, ran.err
            expected = lines[index + 1] if index + 1 < len(lines) and not lines[index + 1].startswith("$") else None
            if expected is not None and command[1] != "preview":
                assert ran.out.strip().splitlines()[0] == expected.strip()
                checked += 1
    assert checked >= 4


def test_cancelling_a_draft_mails_no_one(intake: Intake) -> None:
    notice = intake.run("notify", "incident", "Draft", "--body", "Maybe.", "--draft", "--json").json()["id"]
    ran = intake.run("notify", "cancel", str(notice), "--body", "Not needed after all.", "--json")
    assert ran.code == 0 and ran.json()["recipients"] == 0
    assert notice_mail(intake) == [] and intake.outbox() == []
    refused = intake.run("notify", "publish", str(notice))
    assert refused.code == 2 and "cancelled" in refused.err


def test_header_values_from_staff_are_cleaned(intake: Intake) -> None:
    ran = intake.run("notify", "incident", "Outage\r\nBcc: everyone@elsewhere.example", "--body", "Down.",
                     "--accounts", BAYSIDE)
    assert ran.code == 0, ran.err
    for message in notice_mail(intake):
        assert message["Bcc"] is None and "\n" not in message["Subject"] and "\r" not in message["Subject"]
        assert message["Subject"] == "[Incident] Outage Bcc: everyone@elsewhere.example"
