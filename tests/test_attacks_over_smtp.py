"""The trust issue's attacks, each sent over a real SMTP session to `intake serve`.

What is stored is read back from the database; what leaves is what a real
SMTP relay on loopback (aiosmtpd) received, byte for byte: no header
injected by a name, a Subject or a template line, no answer to an ambiguous
or null sender, one answer at most to a stranger writing twelve times, and
nothing a terminal would obey in `intake cases`, `show` or `messages`. These
tests also run on the newest Python on the machine (`.ci/run`), as the
standard library's header handling differs between versions.
"""
from __future__ import annotations

import base64
import email
import json
from collections.abc import Callable
from email import policy

import pytest

from conftest import CapturingRelay
from parsers.message import parse_message
from smtp_helpers import RunningIntake, make_intake, wait_until
from test_header_injection import assert_clean, raw_mail

__all__ = ["make_intake"]

Make = Callable[..., RunningIntake]
ZACK = "zack.morris@bayside.example"
QUESTION = "Case Type: Ask a Question\nModule: Census\nDescription: Where is the household report?\n"
CR_LF_NAME = "=?utf-8?q?IT_Desk=0D=0AContent-Type=3A_text/plain=0D=0A=0D=0AReset_your_password_at_x?="
# An encoded word that decodes to another one, which decodes to CR/LF and a Bcc header.
INNER = "=?utf-8?q?Help=0D=0ABcc=3A_evil@evil.test?="
DOUBLE = "=?utf-8?b?" + base64.b64encode(INNER.encode()).decode() + "?="


@pytest.fixture
def serving(make_intake: Make, relay: tuple[CapturingRelay, int]) -> tuple[RunningIntake, CapturingRelay]:
    return make_intake(relay_port=relay[1]).start(), relay[0]


def _delivered(relay: CapturingRelay, count: int) -> list[tuple[list[str], bytes]]:
    wait_until(lambda: len(relay.received) >= count, timeout=60, what=f"{count} message(s) at the relay")
    return list(zip(relay.recipients, relay.received, strict=True))


def test_each_attack_over_smtp_stores_one_sender_and_sends_nothing_injected(
        serving: tuple[RunningIntake, CapturingRelay]) -> None:
    intake, relay = serving
    attacks = {
        "from-name": (raw_mail(f"{CR_LF_NAME} <victim@victim.test>", "Help", QUESTION, "from-name@x"),
                      "victim@victim.test"),
        "confusion": (raw_mail(f"{ZACK} <victim@victim.test>", "Households", QUESTION, "confusion@x"), ZACK),
        "two-froms": (raw_mail(f"Zack <{ZACK}>\r\nFrom: Victim <victim@victim.test>", "Households", QUESTION,
                               "two-froms@x"), ZACK),
        "mailboxes": (raw_mail(f"{ZACK}, victim@victim.test", "Households", QUESTION, "mailboxes@x"), ZACK),
        "subject": (raw_mail(f"Zack Morris <{ZACK}>", DOUBLE, QUESTION, "subject@x"), ZACK),
        "template": (raw_mail(f"Zack Morris <{ZACK}>", "Households", QUESTION + f"Subject: {DOUBLE}\n",
                              "template@x"), ZACK),
        "null": (raw_mail(f"Zack Morris <{ZACK}>", "Households", QUESTION, "null@x"), ""),
    }
    for raw, envelope in attacks.values():
        intake.send(raw, sender=envelope)
    for n in range(12):
        intake.send(raw_mail("Stranger <stranger@elsewhere.test>", f"Hello {n}", QUESTION, f"stranger-{n}@x"),
                    sender="stranger@elsewhere.test")
    stored = intake.wait_until_processed(len(attacks) + 12)
    by_id = {m.message_id: m for m in stored.inbound}

    for name in ("from-name", "confusion", "two-froms", "mailboxes"):
        message = by_id[f"{name}@x"]
        assert message.outcome == "refused" and "the sender is ambiguous" in message.reasons[-1], name
    # One address, read once: what was stored is what was decided on and answered.
    for name, (raw, _) in attacks.items():  # the sender stored is the one the decision read
        assert by_id[f"{name}@x"].sender == parse_message(raw).from_address, name
    assert by_id["null@x"].envelope_sender == "" and by_id["null@x"].outcome == "ignored"
    assert by_id["subject@x"].outcome == by_id["template@x"].outcome == "case_created"
    strangers = [by_id[f"stranger-{n}@x"] for n in range(12)]
    assert all(m.outcome == "refused" for m in strangers)

    # Two acknowledgements to Zack, one refusal to the stranger; nothing to the victim.
    sent = _delivered(relay, 3)
    assert sorted(to for to, _ in sent) == [["stranger@elsewhere.test"], [ZACK], [ZACK]]
    for _, raw in sent:
        assert_clean(raw)
        message = email.message_from_bytes(raw, policy=policy.default)
        assert "\r" not in str(message["Subject"]) and "evil.test" not in str(message.get("Bcc", ""))
    assert not any(b"victim" in raw for _, raw in sent)
    assert len([m for m in stored.outbox if "stranger@elsewhere.test" in m.recipients]) == 1


def test_terminal_escapes_from_mail_are_shown_visibly(serving: tuple[RunningIntake, CapturingRelay]) -> None:
    intake, _ = serving
    hostile = "Report \x1b]0;owned\x07 \x1b[2J \x1b]52;c;ZWNobyBoaQ==\x07 \u202egnp.exe"
    body = QUESTION.replace("Where is", "\x1b]8;;http://evil.test\x1b\\\\click\x1b]8;;\x1b\\\\ Where is")
    intake.send(raw_mail(f"Zack Morris <{ZACK}>", "=?utf-8?b?" + base64.b64encode(hostile.encode()).decode() + "?=",
                         body, "escapes@x"))
    stored = intake.wait_until_processed(1)
    number = stored.cases[-1].number
    for args in (("cases",), ("show", str(number)), ("messages",)):
        ran = intake.command(*args)
        assert ran.returncode == 0, ran.stderr
        assert "\x1b" not in ran.stdout and "\x07" not in ran.stdout and "\u202e" not in ran.stdout, args
        assert "\\x1b" in ran.stdout, args
    listed = intake.command("cases", "--json")
    assert "\x1b" not in listed.stdout and json.loads(listed.stdout)[-1]["subject"].startswith("Report \x1b]0;")
