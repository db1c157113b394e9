"""Limits that hold and lose nothing: a stored message over one is kept, named, and only a contact is told.

Each limit is tested at its edge and just past it, with the limits set low in
the configuration; the defaults are tested against the attacks of the issue
(a thousand nested multiparts, ten thousand parts). Size, headers and MIME
shape are measured before the MIME parse, so such a message never reaches it.
"""
from __future__ import annotations

import base64
from pathlib import Path

import pytest

from conftest import DATA, SUPPORT, CapturingRelay, Intake, compose
from parsers.limits import Limits, measure, structural_excess
from parsers.submission import parse
from routing.schema import FORMS

ZACK = "Zack Morris <zack.morris@bayside.example>"
QUESTION = "Case Type: Ask a Question\nModule: Census\nDescription: Where is the household report?\n"


def nested(depth: int, sender: str = ZACK, extra_headers: str = "", tag: str = "") -> bytes:
    """A message whose template sits inside `depth` multiparts, each inside the one before."""
    head = (f"From: {sender}\r\nTo: {SUPPORT}\r\nSubject: Households\r\nMessage-ID: <nested-{depth}{tag}@x>\r\n"
            f"MIME-Version: 1.0\r\n{extra_headers}")
    opening = "".join(f'Content-Type: multipart/mixed; boundary="b{n}"\r\n\r\n--b{n}\r\n' for n in range(depth))
    closing = "".join(f"\r\n--b{n}--\r\n" for n in reversed(range(depth)))
    return (head + opening + "Content-Type: text/plain\r\n\r\n" + QUESTION + closing).encode()


def with_parts(count: int, sender: str = ZACK) -> bytes:
    """The template and `count - 1` small attachments, all in one multipart/mixed."""
    parts = [f"--p\r\nContent-Type: text/plain\r\n\r\n{QUESTION}"]
    parts += [f'--p\r\nContent-Type: text/plain\r\nContent-Disposition: attachment; filename="f{n}.txt"\r\n\r\n{n}'
              for n in range(1, count)]
    return (f"From: {sender}\r\nTo: {SUPPORT}\r\nSubject: Households\r\nMessage-ID: <parts-{count}@x>\r\n"
            f'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="p"\r\n\r\n'
            + "\r\n".join(parts) + "\r\n--p--\r\n").encode()


def with_headers(count: int) -> bytes:
    extra = "".join(f"X-Filler-{n}: {n}\r\n" for n in range(count - 5))  # 5 headers of its own
    return (f"From: {ZACK}\r\nTo: {SUPPORT}\r\nSubject: Households\r\nMessage-ID: <headers-{count}@x>\r\n"
            f"{extra}Content-Type: text/plain\r\n\r\n{QUESTION}").encode()


# --- measured before parsing ----------------------------------------------------------------------------


def test_the_shape_is_measured_in_one_pass_without_recursion() -> None:
    assert measure(nested(1000)).mime_depth == 1000  # deeper than Python's recursion limit allows to parse
    assert measure(with_parts(10_000)).mime_parts == 10_000
    assert measure(compose(ZACK, "Plain", QUESTION)).mime_depth == 0
    alternative = compose(ZACK, "Both", QUESTION, html="<p>x</p>",
                          attachments=(("a.txt", "text/plain", b"a"),))
    found = measure(alternative)
    assert (found.mime_depth, found.mime_parts) == (2, 4)  # mixed: (alternative: text, html), the file
    assert measure(with_headers(40)).headers == 40


def test_a_message_over_a_structural_limit_has_only_its_headers_read() -> None:
    submission = parse(nested(1000), FORMS)
    assert submission.excess is not None and submission.excess.limit == "max_mime_depth"
    assert submission.message is not None and submission.message.from_address == "zack.morris@bayside.example"
    assert submission.message.text == "" and submission.template.fields == ()
    assert any("only the headers were read" in d for d in submission.message.defects)
    big = compose(ZACK, "Big", QUESTION + "x" * 30_000)
    assert structural_excess(measure(big), Limits(max_message_bytes=20_000)) is not None
    assert parse(big, FORMS, limits=Limits(max_message_bytes=20_000)).message.text == ""  # type: ignore[union-attr]


# --- through ingest: kept, named, only a contact told -------------------------------------------------


@pytest.fixture
def limited(tmp_path: Path, database_url: str, capsys: pytest.CaptureFixture[str],
            relay: tuple[CapturingRelay, int]) -> Intake:
    instance = Intake(tmp_path, database_url, capsys, relay=relay)
    instance.config.write_text(instance.config.read_text() + "[limits]\nmax_mime_depth = 3\nmax_mime_parts = 6\n"
                               "max_attachments = 4\nmax_attachment_bytes = 1000\nmax_headers = 30\n")
    assert instance.run("contacts", "import", str(DATA / "contacts.csv")).code == 0
    return instance


@pytest.mark.parametrize(("within", "over", "limit"), [
    (nested(3), nested(4), "max_mime_depth"),
    (with_parts(5), with_parts(7), "max_mime_parts"),
    (with_parts(5), with_parts(6), "max_attachments"),  # the template and 4 attachments is the edge
    (with_headers(30), with_headers(31), "max_headers"),
])
def test_each_limit_at_its_edge_and_just_past_it(limited: Intake, within: bytes, over: bytes, limit: str) -> None:
    limited.ingest(within)
    assert limited.last_outcome()["outcome"] == "case_created", limited.last_outcome()
    limited.ingest(over)
    last = limited.last_outcome()
    assert last["outcome"] == "refused" and f"over the limit {limit}" in last["reasons"][-1], last
    assert last["size"] == len(over)  # kept as received
    text = limited.last_reply_text()
    assert "Please send" in text and "Traceback" not in text


def test_an_attachment_over_the_decoded_size_is_refused_and_one_at_it_is_not(limited: Intake) -> None:
    at = compose(ZACK, "At", QUESTION, attachments=(("at.bin", "application/octet-stream", b"x" * 1000),))
    over = compose(ZACK, "Over", QUESTION, attachments=(("over.bin", "application/octet-stream", b"x" * 1001),))
    limited.ingest(at)
    assert limited.last_outcome()["outcome"] == "case_created"
    limited.ingest(over)
    assert "over the limit max_attachment_bytes" in limited.last_outcome()["reasons"][-1]
    assert "1 KB" in limited.last_reply_text()


def test_strangers_and_programs_over_a_limit_are_never_told(limited: Intake) -> None:
    limited.ingest(nested(4, sender="Stranger <someone@elsewhere.test>"))
    stranger = limited.last_outcome()
    assert stranger["outcome"] == "refused" and "no reply sent" in stranger["reasons"][-1]
    limited.ingest(nested(4, extra_headers="Auto-Submitted: auto-replied\r\n", tag="-auto"))
    assert limited.last_outcome()["outcome"] == "ignored"
    assert limited.outbox() == []


def test_the_attacks_of_the_issue_end_in_a_named_refusal_with_a_short_answer(intake: Intake) -> None:
    for raw, limit in ((nested(1000), "max_mime_depth"), (with_parts(10_000), "max_mime_parts")):
        assert intake.ingest(raw).code == 0
        last = intake.last_outcome()
        assert last["outcome"] == "refused" and f"over the limit {limit}" in last["reasons"][-1], last
        assert len(intake.relay.received[-1]) < 20_000  # type: ignore[union-attr]  # not a 533 KB acknowledgement
    assert intake.cases() == []


def test_nul_bytes_in_a_header_are_removed_and_the_message_is_handled(intake: Intake) -> None:
    raw = compose(ZACK, "Households", QUESTION).replace(b"Subject: Households", b"Subject: House\x00holds")
    assert b"\x00" in raw.split(b"\n\n", 1)[0]
    intake.ingest(raw)
    last = intake.last_outcome()
    assert last["outcome"] == "case_created", last
    assert intake.cases()[-1]["subject"].startswith("House")


def test_nul_decoded_from_a_subject_or_a_body_is_never_stored(intake: Intake) -> None:
    """PostgreSQL's text columns refuse NUL: a message holding one must still be stored and handled."""
    raw = compose(ZACK, "=?utf-8?q?House=00holds?=", "", attachments=())
    raw = raw.replace(b"Content-Transfer-Encoding: 7bit", b"Content-Transfer-Encoding: base64")
    head, _, _ = raw.partition(b"\n\n")
    raw = head + b"\n\n" + base64.encodebytes(QUESTION.replace("Where", "Wh\x00ere").encode())
    assert intake.ingest(raw).code == 0
    last = intake.last_outcome()
    assert last["outcome"] == "case_created", last
    shown = intake.show(intake.cases()[-1]["number"])
    assert "\x00" not in shown["subject"] and "\x00" not in shown["description"]
    assert "Where is the household report?" in shown["description"]
