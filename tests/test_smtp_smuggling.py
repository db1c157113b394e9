"""SMTP smuggling: an end-of-data that is not CRLF.CRLF never ends the message.

A sender that hides "\\n.\\r\\n" (or "\\r.\\r\\n", "\\n.\\n") inside DATA and
follows it with a second MAIL FROM could make a server that honours the bare
line end store two messages, the second with a From the sending server never
checked. aiosmtpd 1.4.5 and later end DATA only at CRLF.CRLF; the project
requires that version, and this test speaks raw SMTP to `intake serve`.
"""
from __future__ import annotations

from collections.abc import Callable

import pytest

from conftest import SUPPORT
from smtp_helpers import RunningIntake, case_message, converse, make_intake, open_session, smtp_reply

__all__ = ["make_intake"]

Make = Callable[..., RunningIntake]

SMUGGLED = (f"MAIL FROM:<victim@victim.test>\r\nRCPT TO:<{SUPPORT}>\r\nDATA\r\n"
            "From: victim@victim.test\r\nSubject: smuggled\r\nMessage-ID: <smuggled@victim.test>\r\n\r\nhi\r\n")


@pytest.mark.parametrize("fake_end", ["\n.\r\n", "\r.\r\n", "\n.\n", "\r\n.\r", "\r\n.\n"])
def test_a_bare_line_end_dot_does_not_end_the_data(make_intake: Make, fake_end: str) -> None:
    intake = make_intake().start()
    sock = open_session(intake.port)
    try:
        body = case_message("Households", message_id="<carrier@bayside.example>").rstrip(b"\r\n")
        sock.sendall(body + fake_end.encode() + SMUGGLED.encode() + b"\r\n.\r\n")
        assert smtp_reply(sock)[0].startswith("250")
        assert converse(sock, "QUIT")[0].startswith("221")
    finally:
        sock.close()
    stored = intake.wait_until_processed(1)
    assert [m.message_id for m in stored.inbound] == ["carrier@bayside.example"]
    assert b"smuggled@victim.test" in stored.inbound[0].raw  # kept as text of the one message
