"""A case as a conversation: replies become comments, staff answer, resolve, reopen, close, follow up."""
from __future__ import annotations

import datetime as dt
import email
import re
from email import policy as email_policy

from sqlalchemy import update

from conftest import DATA, Intake, compose
from intake.store.database import open_store
from intake.store.models import Case

ZACK = "Zack Morris <zack.morris@bayside.example>"
KELLY = "Kelly Kapowski <kelly.kapowski@bayside.example>"
JESSIE = "Jessie Spano <jessie.spano@valley.example>"  # another district
QUESTION = "Case Type: Ask a Question\nModule: Census\nDescription: Where is the household report?\n"


def _open_case(intake: Intake) -> tuple[int, email.message.EmailMessage]:
    intake.ingest(compose(ZACK, "Household report", QUESTION, message_id="<first@bayside.example>"))
    number = intake.cases()[-1]["number"]
    [ack] = intake.sent_mail()
    return number, ack


def _reply(sender: str, to: email.message.EmailMessage, body: str, *, references: bool = True,
           subject_prefix: str = "Re: ", attachments: tuple[tuple[str, str, bytes], ...] = ()) -> bytes:
    headers = {}
    if references:
        headers = {"In-Reply-To": to["Message-ID"], "References": f"{to['References']} {to['Message-ID']}"}
    return compose(sender, subject_prefix + str(to["Subject"]), body, headers=headers, attachments=attachments)


GMAIL_QUOTE = ("The report still shows last year's households.\n\n"
               "On Sat, Nov 28, 2026 at 6:07 AM Campus Support <support@intake.example> wrote:\n"
               "> Hello Zack Morris,\n>\n> Thank you for your message\n")
OUTLOOK_QUOTE = ("Here is the screenshot you asked for.\n\n"
                 "________________________________\n"
                 "From: Campus Support <support@intake.example>\n"
                 "Sent: Saturday, November 28, 2026 6:07 AM\n"
                 "To: Zack Morris <zack.morris@bayside.example>\n"
                 "Subject: [Case #1] Household report\n\n"
                 "Hello Zack Morris,\n")


def _case_status(intake: Intake, number: int) -> str:
    return intake.show(number)["status"]


def test_a_whole_conversation(intake: Intake) -> None:
    number, ack = _open_case(intake)
    assert _case_status(intake, number) == "new"

    # Gmail-style reply, threaded by In-Reply-To: only the new text becomes the comment.
    ran = intake.ingest(_reply(ZACK, ack, GMAIL_QUOTE))
    assert f"comment_added #{number}" in ran.out, ran.out
    # Outlook-style reply: no In-Reply-To/References, "RE:" and the [Case #N] tag, with an attachment.
    shot = b"\x89PNG\r\n\x1a\n" + b"\x02" * 64
    ran = intake.ingest(_reply(ZACK, ack, OUTLOOK_QUOTE, references=False, subject_prefix="RE: ",
                               attachments=(("households.png", "image/png", shot),)))
    assert f"comment_added #{number}" in ran.out, ran.out
    case = intake.show(number)
    assert [c["body"] for c in case["comments"]] == ["The report still shows last year's households.",
                                                      "Here is the screenshot you asked for."]
    assert case["comments"][1]["attachments"][0]["filename"] == "households.png"
    assert "households.png" in [a["filename"] for a in case["attachments"]]
    assert case["status"] == "open"
    assert len(intake.cases()) == 1

    # Staff answer on the thread: emailed to the contact, threaded, waiting on the contact.
    staff = intake.run("comment", str(number), "--body", "Please run the report again with 26-27 selected.")
    assert staff.code == 0, staff.err
    mail = intake.sent_mail()[-1]
    assert mail["To"].addresses[0].addr_spec == "zack.morris@bayside.example"
    assert str(mail["Subject"]) == f"[Case #{number}] Household report"
    assert mail["In-Reply-To"] and mail["X-Loop"]
    # A person wrote it to one contact: not marked automatic (RFC 3834), so the contact's own
    # mail system treats it as the personal mail it is.
    assert mail["Auto-Submitted"] is None
    assert "26-27 selected" in mail.get_body(preferencelist=("plain",)).get_content()
    assert _case_status(intake, number) == "waiting on contact"
    internal = intake.run("comment", str(number), "--body", "Known issue KB-12", "--internal")
    assert internal.code == 0 and len(intake.sent_mail()) == 2  # ack, staff comment; the note is not mailed

    # Resolve: the resolution is emailed; a reply reopens the case.
    assert intake.run("resolve", str(number), "--resolution", "Year selector fixed in 2627.1").code == 0
    resolution = intake.sent_mail()[-1]
    assert "Year selector fixed" in resolution.get_body(preferencelist=("plain",)).get_content()
    assert resolution["Auto-Submitted"] is None  # written by a person to the contact
    assert _case_status(intake, number) == "resolved"
    intake.ingest(_reply(ZACK, resolution, "Still wrong for one school.\n\n> Case #1 has been resolved.\n"))
    assert _case_status(intake, number) == "open"

    # Close; a reply within the window reopens, a late one makes a linked new case.
    assert intake.run("close", str(number)).code == 0
    intake.ingest(_reply(ZACK, resolution, "One more thing: the PDF is blank."))
    assert _case_status(intake, number) == "open"
    assert intake.run("close", str(number)).code == 0
    _age_closing(intake, number, days=20)
    ran = intake.ingest(_reply(ZACK, resolution, "The problem is back this year."))
    assert "case_created" in ran.out, ran.out
    follow_up = intake.cases()[-1]
    assert follow_up["number"] != number and follow_up["subject"] == "Household report"
    assert intake.show(follow_up["number"])["linked_cases"] == [number]
    assert intake.show(number)["linked_cases"] == [follow_up["number"]]
    assert intake.show(follow_up["number"])["description"] == "The problem is back this year."
    text = intake.sent_mail()[-1].get_body(preferencelist=("plain",)).get_content()
    assert f"Case #{number}" in text and "closed" in text

    # The thread, in order, in the text view.
    shown = intake.run("show", str(number))
    assert shown.out.index("last year's households") < shown.out.index("26-27 selected")


def _age_closing(intake: Intake, number: int, days: int) -> None:
    """Move the case's closing time into the past, as if the days had gone by."""
    import tomllib
    url = tomllib.loads(intake.config.read_text())["database"]["url"]
    store = open_store(url)
    with store.session() as session, session.begin():
        session.execute(update(Case).where(Case.number == number)
                        .values(closed=dt.datetime.now(dt.UTC) - dt.timedelta(days=days)))
    store.engine.dispose()


def test_contacts_of_the_same_district_may_comment(intake: Intake) -> None:
    number, ack = _open_case(intake)
    ran = intake.ingest(_reply(KELLY, ack, "Same problem here at the middle school."))
    assert f"comment_added #{number}" in ran.out
    assert intake.show(number)["comments"][0]["author"] == "kelly.kapowski@bayside.example"


def test_strangers_cannot_slip_a_comment_into_a_case(intake: Intake) -> None:
    number, ack = _open_case(intake)
    intake.ingest(_reply(JESSIE, ack, "I want to see this case."))
    assert intake.last_outcome()["outcome"] == "refused"
    assert "not a contact of the district" in intake.last_reply_text()
    intake.ingest(_reply("Mallory <mallory@evil.example>", ack, "hi", references=False))
    assert intake.last_outcome()["outcome"] == "refused"
    assert intake.show(number)["comments"] == []


def test_a_guessed_reference_does_not_find_the_case(intake: Intake) -> None:
    number, _ = _open_case(intake)
    forged = compose(ZACK, "Question", QUESTION,
                     headers={"In-Reply-To": f"<intake.{number}.000000000000.abc@intake.example>"})
    intake.ingest(forged)
    assert intake.last_outcome()["outcome"] == "case_created"  # a new case, not a comment
    assert intake.show(number)["comments"] == []


def test_forwarding_is_not_replying(intake: Intake) -> None:
    number, ack = _open_case(intake)
    intake.ingest(_reply(ZACK, ack, "FYI\n\n" + QUESTION, subject_prefix="Fwd: "))
    assert intake.last_outcome()["outcome"] == "case_created"
    assert intake.show(number)["comments"] == []


def test_plus_address_finds_the_case(intake: Intake) -> None:
    number, ack = _open_case(intake)
    reply_to = ack["Reply-To"].addresses[0].addr_spec
    assert reply_to.startswith(f"support+{number}-")
    raw = compose(ZACK, "About my report", "It works now, thanks.")
    raw = raw.replace(b"To: Campus Support <support@intake.example>", f"To: {reply_to}".encode())
    ran = intake.ingest(raw)
    assert f"comment_added #{number}" in ran.out, ran.out


def test_auto_replies_to_our_mail_are_never_comments(intake: Intake) -> None:
    number, ack = _open_case(intake)
    intake.ingest(_reply(ZACK, ack, "I am out of the office until Monday.") .replace(
        b"Subject:", b"Auto-Submitted: auto-replied\nSubject:", 1))
    assert intake.last_outcome()["outcome"] == "ignored"
    assert intake.show(number)["comments"] == []


def test_status_by_email_lists_open_and_recently_closed_cases(intake: Intake) -> None:
    first, _ = _open_case(intake)
    intake.ingest(compose(ZACK, "Second question", QUESTION))
    second = intake.cases()[-1]["number"]
    assert intake.run("close", str(second)).code == 0
    intake.ingest(compose(ZACK, "status", ""))
    assert intake.last_outcome()["outcome"] == "status_sent"
    text = intake.last_reply_text()
    open_part, closed_part = text.split("Closed in the last 90 days")
    assert f"#{first}" in open_part and "Household report" in open_part
    assert f"#{second}" in closed_part and f"#{second}" not in open_part


def test_approving_a_replacement_changes_the_registry_and_tells_both(intake: Intake) -> None:
    intake.ingest(compose(ZACK, "Replace Kelly", (
        "Case Type: Modify Support Contacts\nRequest Type: Replace\nContact First Name: Stacey\n"
        "Contact Last Name: Carosi\nContact Email: stacey.carosi@bayside.example\nContact Type: Technical\n"
        "Area of Responsibility: SIS\nContact Replacement Name: Kelly Kapowski\n"
        "Description: Kelly retires at the end of the month.\n")))
    number = intake.cases()[-1]["number"]
    before = len(intake.sent_mail())
    ran = intake.run("approve", str(number), "--by", "helpdesk@intake.example")
    assert ran.code == 0, ran.err
    contacts = {c["email"]: c for c in intake.run("contacts", "list", "--json").json()}
    assert contacts["stacey.carosi@bayside.example"]["contact_type"] == "Technical"
    assert contacts["stacey.carosi@bayside.example"]["accounts"] == ["Bayside School (TESTING)"]
    assert contacts["kelly.kapowski@bayside.example"]["active"] is False
    told = {m["To"].addresses[0].addr_spec for m in intake.sent_mail()[before:]}
    assert told == {"zack.morris@bayside.example", "stacey.carosi@bayside.example", "kelly.kapowski@bayside.example"}
    case = intake.show(number)
    assert case["approved_by"] == "helpdesk@intake.example"
    # Applied is done: the case is resolved, no longer new, and the resolution says what changed.
    assert case["status"] == "resolved" and "Added Stacey Carosi" in case["resolution"]
    assert all(m["Auto-Submitted"] == "auto-generated" for m in intake.sent_mail()[before:])
    again = intake.run("approve", str(number))
    assert again.code == 2 and "already approved" in again.err


def test_reply_cap_holds_a_loop_that_slips_through(intake: Intake) -> None:
    for n in range(14):  # a contact's mail system gone wrong, resending something without a template
        intake.ingest(compose(ZACK, f"Hello {n}", "no template here"))
    answers = [m for m in intake.outbox() if m["to"] == ["zack.morris@bayside.example"]]
    assert len(answers) == 10
    assert "automatic replies this hour" in intake.last_outcome()["reasons"][-1]


def test_a_stranger_writing_again_and_again_is_answered_once(intake: Intake) -> None:
    for n in range(12):  # spam with a forged From: each refusal would go to an innocent third party
        intake.ingest(compose("Stranger <stranger@elsewhere.example>", f"Hello {n}", "no template here"))
    refusals = [m for m in intake.outbox() if m["to"] == ["stranger@elsewhere.example"]]
    assert len(refusals) == 1
    outcomes = intake.messages()
    assert {m["outcome"] for m in outcomes} == {"refused"} and len(outcomes) == 12
    assert "already answered once in the last 30 days" in outcomes[-1]["reasons"][-1]


def test_two_intakes_answering_each_other_do_not_loop(intake: Intake) -> None:
    """Our acknowledgement, delivered to another intake, is ignored there (Auto-Submitted), and vice versa."""
    number, ack = _open_case(intake)
    other_ack = email.message_from_bytes(ack.as_bytes().replace(b"support@intake.example", b"help@other.example"),
                                         policy=email_policy.default)
    intake.ingest(other_ack.as_bytes())
    assert intake.last_outcome()["outcome"] == "ignored"
    assert len(intake.outbox()) == 1


def test_mail_carrying_our_x_loop_is_ignored(intake: Intake) -> None:
    intake.ingest(compose(ZACK, "Household report", QUESTION, headers={"X-Loop": "support@intake.example"}))
    assert intake.last_outcome()["outcome"] == "ignored"
    assert "X-Loop" in intake.last_outcome()["reasons"][0]
    assert intake.outbox() == []


def test_bounces_of_our_mail_suspend_the_contact_until_cleared(intake: Intake) -> None:
    intake.ingest(compose(KELLY, "Attendance", QUESTION))
    [ack] = intake.outbox()
    bounce = (DATA / "bounces" / "postfix-5.1.1-user-unknown.eml").read_bytes()
    for n in range(3):  # three distinct bounces of the acknowledgement
        raw = bounce.replace(b"Message-ID: <", f"Message-ID: <n{n}.".encode(), 1)
        raw = re.sub(rb"<intake\.[^>]+@intake\.example>", f"<{ack['message_id']}>".encode(), raw)
        intake.ingest(raw)
        assert intake.last_outcome()["outcome"] == "ignored"
    assert "bounce of" in intake.last_outcome()["reasons"][0]
    listed = intake.run("contacts", "list")
    assert "kelly.kapowski@bayside.example" in listed.out and "bouncing" in listed.out
    intake.ingest(compose(KELLY, "Attendance again", QUESTION))
    assert intake.outbox()[-1]["status"] == "suppressed"
    assert intake.run("contacts", "clear-bounce", "kelly.kapowski@bayside.example").code == 0
    contact = {c["email"]: c for c in intake.run("contacts", "list", "--json").json()}["kelly.kapowski@bayside.example"]
    assert contact["bouncing"] is False and contact["bounces"] == 0
