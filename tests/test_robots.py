"""Mail from programs is recognised by any of several signals, never answered, and people's mail is not.

The samples are written as the programs write them: out-of-office replies
without Auto-Submitted, bounces from post_master@ and Exchange, an ARF
complaint, a read receipt, a calendar acceptance, a challenge-response.
"""
from __future__ import annotations

import pytest

from conftest import SUPPORT, Intake, compose
from parsers.submission import parse
from routing.schema import FORMS

QUESTION = "Case Type: Ask a Question\nModule: Census\nDescription: Where is the household report?\n"


def raw(headers: dict[str, str], body: str = "I am away until Monday.", *, content_type: str = "text/plain",
        newline: str = "\r\n") -> bytes:
    fields = {"From": "Zack Morris <zack.morris@bayside.example>", "To": SUPPORT, "Subject": "Households",
              "Message-ID": "<robot-test@bayside.example>", "Date": "Tue, 01 Dec 2026 10:00:00 +0000",
              "MIME-Version": "1.0", "Content-Type": content_type, **headers}
    head = newline.join(f"{name}: {value}" for name, value in fields.items() if value)
    return (head + newline + newline + body.replace("\n", newline) + newline).encode()


def automatic(message: bytes) -> str | None:
    return parse(message, FORMS).automatic


@pytest.mark.parametrize(("headers", "signal"), [
    ({"Subject": "Automatic reply: Households"}, "subject"),
    ({"Subject": "Auto reply: Households"}, "subject"),
    ({"Subject": "AUTO: Zack Morris is out of the office (returning 12/07/2026)"}, "subject"),
    ({"Subject": "Out of Office: Households"}, "subject"),
    ({"Subject": "Abwesenheitsnotiz: Households"}, "subject"),
    ({"Subject": "Réponse automatique : Households"}, "subject"),
    ({"Subject": "Respuesta automática: Households"}, "subject"),
    ({"Subject": "Undeliverable: Households"}, "subject"),
    ({"Subject": "Returned Mail: see transcript for details"}, "subject"),
    ({"Subject": "Delivery failure notification"}, "subject"),
    ({"Subject": "Undelivered Mail Returned to Sender"}, "subject"),
    ({"Subject": "メールエラー通知"}, "subject"),
    ({"Subject": "Your message awaits moderator approval"}, "subject"),
    ({"Subject": "complaint about message from 192.0.2.1"}, "subject"),
    ({"Subject": "Read: Households"}, "subject"),
    ({"Subject": "Accepted: Training on 12/14"}, "subject"),
    ({"From": "Mail Delivery <post_master@mail.bayside.example>", "Subject": "Notice"}, "program's address"),
    ({"From": "no-reply@bayside.example", "Subject": "Your password"}, "program's address"),
    ({"From": "district_smtp_mail_service@bayside.example", "Subject": "Notice"}, "program's address"),
    ({"From": "noreply-dmarc-support@google.example", "Subject": "Notice"}, "program's address"),
    ({"Subject": "Report Domain: bayside.example Submitter: google.com Report-ID: 123"}, "subject"),
    ({"Precedence": "auto_reply"}, "Precedence"),
    ({"List-Unsubscribe": "<mailto:leave@lists.example>"}, "List-Unsubscribe"),
    ({"X-Autoreply": "yes"}, "X-Autoreply"),
    ({"Auto-Submitted": "auto-replied"}, "Auto-Submitted"),
])
def test_each_signal_alone_marks_a_program(headers: dict[str, str], signal: str) -> None:
    reason = automatic(raw(headers))
    assert reason is not None and signal in reason, reason


def test_an_arf_complaint_is_a_report() -> None:
    body = ("--b\nContent-Type: text/plain\n\nThis is an abuse report.\n"
            "--b\nContent-Type: message/feedback-report\n\nFeedback-Type: abuse\nUser-Agent: test/1.0\nVersion: 1\n"
            "--b--")
    reason = automatic(raw({"Subject": "Abuse report"}, body,
                           content_type='multipart/report; report-type=feedback-report; boundary="b"'))
    assert reason is not None and "report" in reason


def test_a_calendar_acceptance_is_a_program_answering() -> None:
    body = ("BEGIN:VCALENDAR\nMETHOD:REPLY\nBEGIN:VEVENT\nATTENDEE;PARTSTAT=ACCEPTED:mailto:zack@bayside.example\n"
            "END:VEVENT\nEND:VCALENDAR")
    reason = automatic(raw({"Subject": "Training"}, body, content_type="text/calendar; method=REPLY"))
    assert reason == "a calendar reply (iTIP METHOD:REPLY)"


def test_cr_only_line_endings_are_read_too() -> None:
    reason = automatic(raw({"Subject": "Out of Office: Households"}, newline="\r"))
    assert reason is not None and "subject" in reason


@pytest.mark.parametrize("subject", [
    "Re: Out of office coverage for the SIS",
    "Absence report shows the wrong dates",
    "Accepted students are missing from enrollment",
    "Automatically generated transcripts are blank",
    "Delivery of report cards",
    "Households",
])
def test_people_writing_about_such_things_are_not_programs(subject: str) -> None:
    assert automatic(raw({"Subject": subject}, QUESTION)) is None


def test_an_out_of_office_on_a_case_thread_is_not_a_comment(intake: Intake) -> None:
    intake.ingest(compose("Zack Morris <zack.morris@bayside.example>", "Households", QUESTION))
    number = intake.cases()[-1]["number"]
    away = compose("Zack Morris <zack.morris@bayside.example>", f"Automatic reply: [Case #{number}] Households",
                   "I am out of the office until Monday.")
    ran = intake.ingest(away)
    assert "ignored" in ran.out, ran.out
    assert intake.show(number)["comments"] == [] and len(intake.outbox()) == 1  # only the acknowledgement


def test_a_bounce_from_post_master_is_never_answered(intake: Intake) -> None:
    ran = intake.ingest(compose("Mail Delivery System <post_master@mx.elsewhere.example>",
                                "Delivery failure notification", "Your message could not be delivered."))
    assert "ignored" in ran.out, ran.out
    assert intake.outbox() == []


# A SendGrid-style report whose inner part names a boundary that never comes and
# whose outer part never closes: mail-parser's epilogue code fails on it.
BROKEN_REPORT = (b"From: SendGrid <bounces@sendgrid.example>\r\nTo: support@intake.example\r\n"
                 b"Subject: Delivery Status\r\nMessage-ID: <sg-1@sendgrid.example>\r\nMIME-Version: 1.0\r\n"
                 b'Content-Type: multipart/mixed; boundary="outer"\r\n\r\n--outer\r\n'
                 b'Content-Type: multipart/report; report-type=delivery-status; boundary="missing"\r\n\r\n'
                 b"Your message could not be delivered.\r\n")


def test_mail_that_mail_parser_cannot_read_is_read_with_the_standard_library() -> None:
    import mailparser
    with pytest.raises(AttributeError):  # the mail-parser bug this guards against
        mailparser.parse_from_bytes(BROKEN_REPORT)
    submission = parse(BROKEN_REPORT, FORMS)
    message = submission.message
    assert message is not None and message.from_address == "bounces@sendgrid.example"
    assert message.subject == "Delivery Status" and message.to == ("support@intake.example",)
    assert "read with the standard library alone" in message.defects[0]
    assert submission.automatic is not None


def test_a_message_mail_parser_cannot_read_ends_handled_not_failed(intake: Intake) -> None:
    ran = intake.ingest(BROKEN_REPORT)
    assert "ignored" in ran.out, ran.out
    assert intake.last_outcome()["outcome"] == "ignored" and intake.outbox() == []
