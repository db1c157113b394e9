"""Outage cases join the open incident; replies to notice mail become cases, notes, or nothing."""
from __future__ import annotations

from conftest import Intake, compose, with_settings
from notify_helpers import BAYSIDE, VALLEY, add_contacts, configure, notice_mail, recipients, reply_to, text_of

ZACK = "Zack Morris <zack.morris@bayside.example>"
JESSIE = "Jessie Spano <jessie.spano@valley.example>"


def _outage(sender: str, subject: str = "Campus is down") -> bytes:
    return compose(sender, f"[Report an Outage] {subject}",
                   "Description: No user can reach Campus since 7:10.\nError Message: 503 Service Unavailable\n")


def _incident(intake: Intake, *options: str) -> int:
    ran = intake.run("notify", "incident", "Digicert Incident", "--body", "Certificates are being reissued.",
                     *options, "--json")
    assert ran.code == 0, ran.err
    return int(ran.json()["id"])


def test_an_outage_case_during_an_incident_joins_it_and_its_acknowledgement_names_it(intake: Intake) -> None:
    notice = _incident(intake, "--accounts", BAYSIDE)
    assert intake.run("notify", "update", str(notice), "--body", "Half of the domains are done.").code == 0
    assert intake.ingest(_outage(ZACK)).code == 0
    case = intake.cases()[-1]
    acknowledgement = " ".join(intake.last_reply_text().split())
    assert "Digicert Incident" in acknowledgement and "UPDATE: Half of the domains are done." in acknowledgement
    assert "helps us understand the scope" in acknowledgement and "phone call is not necessary" in acknowledgement
    assert intake.run("notify", "show", str(notice), "--json").json()["cases"] == [case["number"]]

    # A district outside the incident's scope is not linked to it.
    assert intake.ingest(_outage(JESSIE)).code == 0
    assert "Digicert" not in intake.last_reply_text()
    assert intake.run("notify", "show", str(notice), "--json").json()["cases"] == [case["number"]]


def test_with_several_open_the_most_recent_in_scope_is_joined(intake: Intake) -> None:
    older = _incident(intake)
    newer = _incident(intake, "--accounts", VALLEY)
    assert intake.ingest(_outage(ZACK)).code == 0  # Bayside: only the older one covers it
    assert intake.ingest(_outage(JESSIE)).code == 0
    shown = {n: intake.run("notify", "show", str(n), "--json").json()["cases"] for n in (older, newer)}
    numbers = [c["number"] for c in intake.cases()]
    assert shown == {older: [numbers[0]], newer: [numbers[1]]}


def test_a_configured_rule_joins_other_cases(intake: Intake) -> None:
    configure(intake, 'join_subject_words = ["certificate"]')
    notice = _incident(intake)
    question = compose(ZACK, "Certificate warning in the browser",
                       "Case Type: Ask a Question\nModule: Census\n"
                       "Description: The browser warns about a certificate.\n")
    assert intake.ingest(question).code == 0
    assert intake.run("notify", "show", str(notice), "--json").json()["cases"] == [intake.cases()[-1]["number"]]


def test_resolve_linked_resolves_each_case_and_tells_its_contact_on_its_thread(intake: Intake) -> None:
    notice = _incident(intake)
    for sender in (ZACK, JESSIE):
        assert intake.ingest(_outage(sender)).code == 0
    cases = intake.cases()
    before = len(intake.sent_mail())
    ran = intake.run("notify", "resolve", str(notice), "--body", "All certificates replaced.", "--resolve-linked",
                     "--json")
    assert ran.code == 0 and sorted(ran.json()["resolved_cases"]) == sorted(c["number"] for c in cases)
    assert {c["status"] for c in intake.cases()} == {"resolved"}
    resolutions = [m for m in intake.sent_mail()[before:] if m["List-Id"] is None]
    assert sorted(m["To"].addresses[0].addr_spec for m in resolutions) == ["jessie.spano@valley.example",
                                                                          "zack.morris@bayside.example"]
    for message in resolutions:
        number = next(c["number"] for c in cases if c["contact"] == message["To"].addresses[0].addr_spec)
        assert f"[Case #{number}]" in message["Subject"] and message["In-Reply-To"]
        assert "All certificates replaced." in text_of(message)


def test_a_reply_to_incident_mail_becomes_a_linked_outage_case(intake: Intake) -> None:
    notice = _incident(intake, "--accounts", BAYSIDE)
    mailed = next(m for m in notice_mail(intake) if m["To"].addresses[0].addr_spec == "zack.morris@bayside.example")
    assert intake.ingest(reply_to(mailed, ZACK, "We see the same: no one can sign in.")).code == 0
    case = intake.cases()[-1]
    assert case["case_type"] == "Report an Outage" and case["account"] == BAYSIDE
    assert "no one can sign in" in intake.show(case["number"])["description"]
    assert intake.run("notify", "show", str(notice), "--json").json()["cases"] == [case["number"]]
    assert "Digicert Incident" in intake.last_reply_text()


def test_a_reply_to_maintenance_mail_is_a_note_and_is_answered_with_how_to_file_a_case(intake: Intake) -> None:
    ran = intake.run("notify", "maintenance", "Database upgrade", "--starts", "2030-01-05 22:00", "--ends",
                     "2030-01-06 02:00", "--body", "The SIS is unavailable.", "--accounts", BAYSIDE, "--json")
    notice = ran.json()["id"]
    mailed = next(m for m in notice_mail(intake) if m["To"].addresses[0].addr_spec == "zack.morris@bayside.example")
    assert intake.ingest(reply_to(mailed, ZACK, "Graduation is that night; can it move?")).code == 0
    assert intake.cases() == []
    notes = intake.run("notify", "show", str(notice), "--json").json()["notes"]
    assert [(n["author"], "Graduation" in n["body"]) for n in notes] == [("zack.morris@bayside.example", True)]
    assert "does not open a case" in " ".join(intake.last_reply_text().split())


def test_calendar_and_automatic_replies_to_notice_mail_are_recorded_never_answered(intake: Intake) -> None:
    intake.run("notify", "maintenance", "Database upgrade", "--starts", "2030-01-05 22:00", "--ends",
               "2030-01-06 02:00", "--body", "The SIS is unavailable.", "--accounts", BAYSIDE)
    mailed = next(m for m in notice_mail(intake) if m["To"].addresses[0].addr_spec == "zack.morris@bayside.example")
    outbox = len(intake.outbox())
    accepted = reply_to(mailed, ZACK, "Accepted").replace(
        b"Content-Type: text/plain", b"Content-Type: text/calendar; method=REPLY")
    away = reply_to(mailed, ZACK, "I am away.", **{"Auto-Submitted": "auto-replied"})
    for raw in (accepted, away):
        assert intake.ingest(raw).code == 0
        assert intake.last_outcome()["outcome"] == "ignored"
    assert len(intake.outbox()) == outbox and intake.cases() == []


def test_a_stranger_replying_to_notice_mail_gets_no_case(intake: Intake) -> None:
    _incident(intake)
    mailed = notice_mail(intake)[0]
    assert intake.ingest(reply_to(mailed, "Eve <eve@elsewhere.example>", "Me too")).code == 0
    assert intake.cases() == [] and intake.last_outcome()["outcome"] == "refused"


def test_early_warning_drafts_one_incident_for_three_districts_and_none_for_one_district(intake: Intake) -> None:
    with intake.config.open("a", encoding="utf-8") as handle:
        handle.write("")
    add_contacts(intake, "Westbrook Unified,pat.lee@westbrook.example,Pat,Lee,IT,,,Authorized,SIS,,yes")
    text = with_settings(intake.config.read_text(encoding="utf-8"), "conversations",
                         'staff_addresses = ["oncall@intake.example"]')
    intake.config.write_text(text, encoding="utf-8")
    for _ in range(3):  # one district three times: no warning
        assert intake.ingest(_outage(ZACK)).code == 0
    assert intake.run("notify", "list", "--json").json() == []
    for sender in (JESSIE, "Pat Lee <pat.lee@westbrook.example>"):
        assert intake.ingest(_outage(sender)).code == 0
    drafted = intake.run("notify", "list", "--json").json()
    assert len(drafted) == 1 and drafted[0]["draft"] and drafted[0]["origin"] == "early warning"
    assert sorted(drafted[0]["accounts"]) == sorted([BAYSIDE, VALLEY, "Westbrook Unified"])
    assert notice_mail(intake) == []  # contacts hear nothing until staff publish it
    warnings = [m for m in intake.sent_mail() if m["To"].addresses[0].addr_spec == "oncall@intake.example"]
    assert len(warnings) == 1
    assert f"intake notify publish {drafted[0]['id']}" in text_of(warnings[0])
    assert intake.ingest(_outage(JESSIE)).code == 0  # a fourth: still one draft
    assert len(intake.run("notify", "list", "--json").json()) == 1
    assert intake.run("notify", "publish", str(drafted[0]["id"])).code == 0
    assert len(recipients(notice_mail(intake))) == 6
