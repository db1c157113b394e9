"""One message, one sender: the From mailbox read strictly, once, is stored, decided on and answered.

A From that can be read more than one way is refused and never answered (the
answer could reach someone who did not write), and nothing is guessed.
"""
from __future__ import annotations

import pytest

from conftest import SUPPORT, Intake
from parsers.sender import read_sender

QUESTION = "Case Type: Ask a Question\nModule: Census\nDescription: Where is the household report?\n"
ZACK = "zack.morris@bayside.example"


def raw_mail(from_headers: list[str], message_id: str, body: str = QUESTION) -> bytes:
    froms = "".join(f"From: {value}\r\n" for value in from_headers)
    return (f"{froms}To: {SUPPORT}\r\nSubject: Households\r\nMessage-ID: <{message_id}>\r\n"
            f"Date: Tue, 01 Dec 2026 10:00:00 +0000\r\n\r\n{body}").encode()


@pytest.mark.parametrize(("values", "address", "name"), [
    (["Zack Morris <Zack.Morris@Bayside.example>"], ZACK, "Zack Morris"),
    (['"Morris, Zack" <zack.morris@bayside.example>'], ZACK, "Morris, Zack"),
    (["Zack M. Morris <zack.morris@bayside.example>"], ZACK, "Zack M. Morris"),
    (["=?utf-8?q?Zo=C3=AB_M=C3=BCller?= <zoe@bayside.example>"], "zoe@bayside.example", "Zoë Müller"),
    (["Zo\udcc3\udcab <zoe@bayside.example>"], "zoe@bayside.example", "Zoë"),  # raw UTF-8 in the header
    (['"zack.morris@bayside.example" <zack.morris@bayside.example>'], ZACK, ZACK),
    (["zack.morris@bayside.example"], ZACK, ""),
    # Folded, as the standard library and other clients fold a From over 78 characters:
    (["Zack Morris\r\n <zack.morris@bayside.example>"], ZACK, "Zack Morris"),
    (["\n Zack Morris the Technology Coordinator\n\t<zack.morris@bayside.example>"], ZACK,
     "Zack Morris the Technology Coordinator"),
])
def test_one_mailbox_is_read_as_written(values: list[str], address: str, name: str) -> None:
    assert read_sender(values) == read_sender(values).__class__(address, name, None)


@pytest.mark.parametrize(("values", "problem"), [
    (["zack.morris@bayside.example <victim@victim.test>"], "can be read as more than one address"),
    (['"zack.morris@bayside.example" <victim@victim.test>'], "shows another address (zack.morris@bayside.example)"),
    (["Zack <zack.morris@bayside.example>", "Victim <victim@victim.test>"], "2 From headers"),
    (["zack.morris@bayside.example, victim@victim.test"], "2 mailboxes"),
    (["undisclosed-recipients:;"], "0 mailboxes"),
    (["=?utf-8?q?Zack=0D=0ABcc=3A_evil=40evil.test?= <zack.morris@bayside.example>"], "cannot be read"),
    (["=?utf-8?q?Zack=1B[31m?= <zack.morris@bayside.example>"], "control characters"),
])
def test_a_from_that_names_no_single_sender_is_ambiguous(values: list[str], problem: str) -> None:
    found = read_sender(values)
    assert found.problem is not None and problem in found.problem


@pytest.mark.parametrize("from_headers", [
    ["zack.morris@bayside.example <victim@victim.test>"],
    ["Zack Morris <zack.morris@bayside.example>", "Victim <victim@victim.test>"],
    ["zack.morris@bayside.example, victim@victim.test"],
])
def test_an_ambiguous_sender_is_recorded_and_never_answered(intake: Intake, from_headers: list[str]) -> None:
    ran = intake.ingest(raw_mail(from_headers, f"ambiguous-{len(intake.messages())}@victim.test"))
    assert ran.code == 0, ran.err
    last = intake.last_outcome()
    assert last["outcome"] == "refused" and "the sender is ambiguous" in last["reasons"][-1]
    assert intake.cases() == [] and intake.outbox() == []


def test_the_address_stored_is_the_one_decided_on_and_answered(intake: Intake) -> None:
    ran = intake.ingest(raw_mail(['"Morris, Zack" <Zack.Morris@Bayside.example>'], "one-sender@bayside.example"))
    assert "case_created" in ran.out, ran.out
    stored = intake.last_outcome()
    assert stored["sender"] == ZACK
    assert intake.outbox()[-1]["to"] == [ZACK]
    assert intake.cases()[-1]["submitted_by"] == ZACK


def test_a_from_read_again_is_the_same_sender_without_parsing_it_again(monkeypatch: pytest.MonkeyPatch) -> None:
    from parsers import sender
    value = ["Kelly Kapowski <Kelly.Kapowski@bayside.example>"]
    first = read_sender(value)

    def no_second_parse(*args: object) -> None:
        raise AssertionError("the same From was parsed twice")

    monkeypatch.setattr(sender, "_REGISTRY", no_second_parse)
    assert read_sender(list(value)) == first == sender.Sender("kelly.kapowski@bayside.example", "Kelly Kapowski")
    assert read_sender(["Two <a@x.example>", "From <b@x.example>"]).problem == "the message has 2 From headers"
