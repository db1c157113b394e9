"""What the SMTP protocol can refuse is refused there, with nothing stored: the sender's server tells them.

One connection more than `[smtp] max_sessions` is answered 421 before the
greeting; one RCPT more than `max_recipients` in a transaction is answered
452, and the transaction goes on with the recipients already accepted.
Spoken over raw sockets to a real `intake serve`.
"""
from __future__ import annotations

import socket
from collections.abc import Callable

from conftest import SUPPORT
from smtp_helpers import (
    ZACK_ADDRESS,
    RunningIntake,
    case_message,
    converse,
    dot_stuffed,
    make_intake,
    smtp_reply,
    wait_until,
)

__all__ = ["make_intake"]
Make = Callable[..., RunningIntake]


def _greeting(port: int) -> tuple[socket.socket, str]:
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    return sock, smtp_reply(sock)[0]


def test_one_session_over_the_limit_is_told_421_and_a_freed_slot_is_used_again(make_intake: Make) -> None:
    intake = make_intake(smtp_settings="max_sessions = 2\n").start()
    first, second = _greeting(intake.port), _greeting(intake.port)
    assert first[1].startswith("220") and second[1].startswith("220")
    third, answer = _greeting(intake.port)
    assert answer.startswith("421 4.7.0"), answer
    assert third.recv(100) == b""  # and hung up
    third.close()
    assert converse(first[0], "QUIT")[0].startswith("221")
    first[0].close()

    def a_slot_is_free() -> str | None:
        sock, reply = _greeting(intake.port)
        sock.close()
        return reply if reply.startswith("220") else None
    assert wait_until(a_slot_is_free, timeout=10, what="the closed session's slot to be free again")
    second[0].close()
    assert intake.inbound_count() == 0


def test_one_recipient_over_the_limit_is_told_452_and_the_message_is_stored_once(make_intake: Make) -> None:
    intake = make_intake(smtp_settings="max_recipients = 3\n").start()
    sock, greeting = _greeting(intake.port)
    assert greeting.startswith("220")
    assert converse(sock, "EHLO client.example")[-1].startswith("250")
    assert converse(sock, f"MAIL FROM:<{ZACK_ADDRESS}>")[0].startswith("250")
    local, _, domain = SUPPORT.partition("@")
    answers = [converse(sock, f"RCPT TO:<{local}+{n}@{domain}>")[0] for n in range(5)]
    assert [a[:3] for a in answers] == ["250", "250", "250", "452", "452"], answers
    assert answers[3].startswith("452 4.5.3")
    assert converse(sock, "DATA")[0].startswith("354")
    sock.sendall(dot_stuffed(case_message()) + b".\r\n")
    assert smtp_reply(sock)[0].startswith("250")
    sock.close()
    stored = intake.wait_until_processed(1)
    assert len(stored.inbound) == 1 and stored.inbound[0].source.count("+") == 3
