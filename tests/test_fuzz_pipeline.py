"""Proof by hostile input: generated and mutated messages through the whole pipeline.

hypothesis builds messages from the shapes attackers and broken clients
send (broken and missing boundaries, wrong and unknown charsets, NUL and
8-bit bytes in headers, deep nesting, missing and repeated headers, encoded
words that decode to controls and to more headers) and mutates them. Each is
stored, processed and its answers delivered, as `intake serve` does, and
then: nothing crashed or hung, every message is stored with exactly one
outcome (never `failed`), and no outgoing header holds anything injected.

The budget in CI is fixed (INTAKE_FUZZ_EXAMPLES, 150 by default, well under
a minute); a longer run: `INTAKE_FUZZ_EXAMPLES=20000 ./scripts/test tests/test_fuzz_pipeline.py`.
The malformed samples that ship with CPython (its test/test_email/data) are
run through the same pipeline.
"""
from __future__ import annotations

import email
import os
import sysconfig
from email import policy
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from conftest import DATA, SUPPORT, config_text
from intake.act.worker import process_stored
from intake.cli import main
from intake.config import load_config
from intake.mailin.accept import accept
from intake.mailout.delivery import deliver_pending
from intake.store.database import open_store
from intake.store.migrate import upgrade
from intake.store.models import InboundMessage, OutboundMessage

EXAMPLES = int(os.environ.get("INTAKE_FUZZ_EXAMPLES", "150"))
CONTACTS = ["Zack Morris <zack.morris@bayside.example>", "kelly.kapowski@bayside.example",
            "Stranger <someone@elsewhere.test>", "<>", ""]
INJECTIONS = ["=?utf-8?q?a=0D=0ABcc=3A_evil@evil.test?=", "=?utf-8?b?SGkNCkJjYzogZXZpbEBldmlsLnRlc3Q=?=",
              "=?x-unknown?q?=FF=00?=", "a\x00b", "caf\xe9", "\x1b]0;title\x07", "=?utf-8?q?=E2=80=AE?="]
CHARSETS = ["utf-8", "iso-8859-1", "x-unknown", "utf-7", "", "shift_jis", "utf-16"]
TEMPLATE = "Case Type: Ask a Question\nModule: Census\nDescription: Where is the report?\n"


@st.composite
def headers(draw: st.DrawFn) -> list[str]:
    lines = []
    for _ in range(draw(st.integers(0, 3))):
        lines.append("From: " + draw(st.sampled_from(CONTACTS + INJECTIONS)))
    lines.append(f"To: {draw(st.sampled_from([SUPPORT, '', 'a@b, ' + SUPPORT]))}")
    if draw(st.booleans()):
        lines.append("Subject: " + draw(st.sampled_from(["Households", "status", "template", "Re: [Case #1] x",
                                                          *INJECTIONS])) + draw(st.text(max_size=20)))
    if draw(st.booleans()):
        lines.append(f"Message-ID: <{draw(st.text(min_size=0, max_size=30))}@fuzz>")
    if draw(st.booleans()):
        lines.append(draw(st.sampled_from(["Auto-Submitted: auto-replied", "Precedence: bulk",
                                           "In-Reply-To: <x@y>", "References: <a> <b>", "X-Intake-Trust: yes",
                                           "MIME-Version: 1.0", "Content-Transfer-Encoding: base64"])))
    return lines


@st.composite
def bodies(draw: st.DrawFn, depth: int = 0) -> tuple[list[str], str]:
    """Content headers and a body: a leaf, or a multipart of more, its boundaries kept or broken."""
    if depth < 6 and draw(st.integers(0, 3)) == 0:
        boundary = draw(st.sampled_from(["b", "=_x", "", "a" * 80, "b\x00"]))
        parts = [draw(bodies(depth + 1)) for _ in range(draw(st.integers(0, 3)))]
        inner = "".join(f"--{boundary}\r\n" + "\r\n".join(h) + "\r\n\r\n" + b + "\r\n" for h, b in parts)
        close = draw(st.sampled_from([f"--{boundary}--\r\n", "", f"--{boundary}"]))
        kind = draw(st.sampled_from(["mixed", "alternative", "report; report-type=delivery-status", "signed"]))
        return [f'Content-Type: multipart/{kind}; boundary="{boundary}"'], inner + close
    charset = draw(st.sampled_from(CHARSETS))
    subtype = draw(st.sampled_from(["plain", "html", "calendar", "rfc822-headers"]))
    content = [f"Content-Type: text/{subtype}; charset={charset}"]
    if draw(st.booleans()):
        content.append('Content-Disposition: attachment; filename="' + draw(st.sampled_from(
            ["../../etc/passwd", "con.txt", "a" * 300, "\u202egpj.exe", "=?utf-8?q?=0D=0A?="])) + '"')
    return content, draw(st.sampled_from([TEMPLATE, "", "=?utf-8?q?x?=", "\x00\x01\x02"])) + draw(st.text(max_size=80))


@st.composite
def messages(draw: st.DrawFn) -> bytes:
    head = draw(headers())
    content, body = draw(bodies())
    raw = ("\r\n".join(head + content) + "\r\n\r\n" + body).encode("utf-8", "surrogateescape")
    for _ in range(draw(st.integers(0, 3))):  # byte-level mutations: drop, repeat or corrupt a slice
        if not raw:
            break
        at = draw(st.integers(0, len(raw) - 1))
        span = draw(st.integers(1, 16))
        raw = draw(st.sampled_from([raw[:at] + raw[at + span:], raw[:at] + raw[at:at + span] * 3 + raw[at:],
                                    raw[:at] + bytes([draw(st.integers(0, 255))]) + raw[at + 1:]]))
    return raw


@pytest.fixture
def pipeline(tmp_path: Path, database_url: str):  # type: ignore[no-untyped-def]
    """A configured store and configuration with the test contacts, shared by the examples of one test."""
    config_file = tmp_path / "config.toml"
    config_file.write_text(config_text(database_url, tmp_path / "outgoing"))
    upgrade(database_url)
    assert main(["--config", str(config_file), "contacts", "import", str(DATA / "contacts.csv")]) == 0
    config = load_config(config_file)
    return open_store(config.database_url), config


def _run_and_check(store, config, raw: bytes) -> None:  # type: ignore[no-untyped-def]
    stored = accept(store, raw, "fuzz")
    process_stored(store, config)
    deliver_pending(store, config)
    with store.session() as session:
        row = session.get(InboundMessage, stored.id)
        assert row is not None and (stored.duplicate or row.raw == raw)  # a redelivery is the first one
        assert row.outcome is not None and row.outcome != "failed", (row.outcome, row.error)
        for out in session.scalars(select(OutboundMessage).where(OutboundMessage.inbound_message_id == row.id)):
            assert_no_injection(out.raw)


def assert_no_injection(raw: bytes) -> None:
    head = raw.split(b"\n\n", 1)[0].replace(b"\r\n", b"\n")
    lines = [line for line in head.decode("ascii").split("\n") if line]  # 7-bit headers only
    assert all(line[:1] in (" ", "\t") or ":" in line for line in lines), lines
    names = [line.split(":", 1)[0].lower() for line in lines if line[:1] not in (" ", "\t")]
    assert "bcc" not in names and names.count("subject") == 1 and names.count("to") == 1, names
    parsed = email.message_from_bytes(raw, policy=policy.default)
    for name in ("Subject", "To", "From", "In-Reply-To", "References"):
        value = str(parsed.get(name, ""))
        assert not any(ch in value for ch in "\r\n\x00\x1b"), (name, value)


@settings(max_examples=EXAMPLES, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.data_too_large])
@given(raw=messages())
def test_hostile_messages_end_in_one_outcome_and_inject_nothing(pipeline, raw: bytes) -> None:  # type: ignore[no-untyped-def]
    store, config = pipeline
    _run_and_check(store, config, raw)


def _cpython_email_samples() -> list[Path]:
    folder = Path(sysconfig.get_paths()["stdlib"]) / "test" / "test_email" / "data"
    return sorted(folder.glob("msg_*.txt")) if folder.is_dir() else []


@pytest.mark.skipif(not _cpython_email_samples(), reason="this Python ships without its test/test_email/data")
def test_cpythons_own_malformed_samples_end_in_one_outcome(pipeline) -> None:  # type: ignore[no-untyped-def]
    store, config = pipeline
    for sample in _cpython_email_samples():
        _run_and_check(store, config, sample.read_bytes())


# --- what the fuzzing found, pinned -----------------------------------------------------------------------


def test_a_part_in_an_unknown_charset_is_read_when_mail_parser_fails(pipeline) -> None:  # type: ignore[no-untyped-def]
    """mail-parser raised, and the standard-library reading then failed on `charset=x-unknown` (LookupError)."""
    raw = (b"From: Zack Morris <zack.morris@bayside.example>\r\nTo: support@intake.example\r\nSubject: x\r\n"
           b'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="outer"\r\n\r\n--outer\r\n'
           b"Content-Type: text/plain; charset=x-unknown\r\n\r\nCase Type: Ask a Question\r\n--outer\r\n"
           b'Content-Type: multipart/report; report-type=delivery-status; boundary="missing"\r\n\r\n'
           b"Your message could not be delivered.\r\n")
    store, config = pipeline
    _run_and_check(store, config, raw)


def test_a_bounce_without_a_from_does_not_crash_the_bounce_detectors(pipeline) -> None:  # type: ignore[no-untyped-def]
    """flufl.bounce's Yale detector raised IndexError on a plain bounce with no From, and flufl re-raised it."""
    store, config = pipeline
    _run_and_check(store, config, b"Return-Path: <>\r\nTo: support@intake.example\r\nSubject: Returned mail\r\n"
                                  b"\r\nHello\r\n")
