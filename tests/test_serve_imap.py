"""`intake serve` as an IMAP poller, end to end: mail in a real Dovecot becomes a case, then is flagged."""
from __future__ import annotations

from collections.abc import Callable

import pytest

from dovecot import running_dovecot
from smtp_helpers import RunningIntake, case_message, make_intake, wait_until

__all__ = ["make_intake"]


def test_mail_in_an_imap_mailbox_becomes_a_case_and_is_seen(make_intake: Callable[..., RunningIntake],
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    with running_dovecot() as dovecot:
        monkeypatch.setenv("INTAKE_TEST_IMAP_PASSWORD", dovecot.password)
        imap = ("[[imap]]\nname = \"support\"\nhost = \"127.0.0.1\"\n"
                f"port = {dovecot.port}\nsecurity = \"none\"\nusername = \"{dovecot.user}\"\n"
                "password_env = \"INTAKE_TEST_IMAP_PASSWORD\"\npoll_seconds = 300\n")
        intake = make_intake(imap=imap).start()
        dovecot.append(case_message(message_id="<via-imap@bayside.example>"))
        stored = intake.wait_until_processed(1)
        assert [(m.message_id, m.outcome) for m in stored.inbound] == [("via-imap@bayside.example", "case_created")]
        assert stored.inbound[0].source.startswith("imap:support/INBOX")
        assert len(stored.cases) == 1
        wait_until(lambda: all(b"\\Seen" in flags for flags in dovecot.messages().values()) or None,
                   timeout=30, what="the message flagged \\Seen")
        assert intake.stop() == 0


def test_mail_over_a_limit_in_an_imap_mailbox_is_kept_named_and_only_the_contact_told(
        make_intake: Callable[..., RunningIntake], monkeypatch: pytest.MonkeyPatch) -> None:
    """IMAP cannot refuse a message the way SMTP can: it is stored, the limit named, the contact told once."""
    with running_dovecot() as dovecot:
        monkeypatch.setenv("INTAKE_TEST_IMAP_PASSWORD", dovecot.password)
        imap = ("[[imap]]\nname = \"support\"\nhost = \"127.0.0.1\"\n"
                f"port = {dovecot.port}\nsecurity = \"none\"\nusername = \"{dovecot.user}\"\n"
                "password_env = \"INTAKE_TEST_IMAP_PASSWORD\"\npoll_seconds = 300\n")
        intake = make_intake(imap=imap, max_message_bytes=20_000).start()
        big = case_message(message_id="<big-via-imap@bayside.example>",
                           body="Case Type: Ask a Question\nModule: Census\nDescription: " + "x" * 30_000 + "\n")
        dovecot.append(big)
        stored = intake.wait_until_processed(1)
        message = stored.inbound[0]
        assert message.outcome == "refused" and "over the limit max_message_bytes" in message.reasons[-1]
        assert message.raw.replace(b"\r\n", b"\n") == big.replace(b"\r\n", b"\n") and stored.cases == []
        wait_until(lambda: intake.stored().outbox or None, timeout=30, what="the refusal queued")
        sent = [(m.kind, m.recipients) for m in intake.stored().outbox]
        assert sent == [("refusal", ["zack.morris@bayside.example"])]
        assert intake.stop() == 0
