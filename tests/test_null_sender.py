"""Mail sent with the null envelope sender (MAIL FROM:<>) is never answered.

Bounces and most auto-replies arrive that way (RFC 5321 §4.5.5). SMTP and
LMTP delivery add no Return-Path header, so the envelope sender is stored with
the message and read by the decision.
"""
from __future__ import annotations

from collections.abc import Callable

from conftest import SUPPORT
from smtp_helpers import RunningIntake, case_message, make_intake

__all__ = ["make_intake"]

Make = Callable[..., RunningIntake]


def test_a_complete_case_from_the_null_sender_is_stored_and_never_answered(make_intake: Make) -> None:
    intake = make_intake().start()
    intake.send(case_message("Households", message_id="<null-sender@bayside.example>"), sender="")
    intake.send(case_message("Households again", message_id="<real-sender@bayside.example>"))
    stored = intake.wait_until_processed(2)
    null, real = stored.inbound
    assert (null.envelope_sender, null.outcome, null.case_number) == ("", "ignored", None)
    assert "null envelope sender" in null.reasons[-1]
    assert (real.envelope_sender, real.outcome) == ("zack.morris@bayside.example", "case_created")
    assert [o.inbound_message_id for o in stored.outbox] == [real.id]  # only the real sender is answered
    assert all(SUPPORT not in o.recipients for o in stored.outbox)


def test_lmtp_keeps_the_null_sender_too(make_intake: Make) -> None:
    intake = make_intake(lmtp=True).start()
    import smtplib
    with smtplib.LMTP("127.0.0.1", intake.port, timeout=30) as client:
        client.sendmail("", [SUPPORT], case_message("Households", message_id="<null-lmtp@bayside.example>"))
    stored = intake.wait_until_processed(1)
    assert [(m.envelope_sender, m.outcome) for m in stored.inbound] == [("", "ignored")]
    assert stored.outbox == []
