"""A large attachment is decoded from the stored message in chunks, and comes out byte for byte as sent.

Its base64 is set aside before the MIME parse (`parsers.large_parts`); these tests prove the files,
the text and the stored raw message are what the whole-message parse gave, and that broken base64
decodes as `base64.b64decode` decodes it.
"""
from __future__ import annotations

import base64
import binascii
import email
import random
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select

from conftest import Intake, compose
from intake.act.worker import process_stored
from intake.config import load_config
from intake.mailin.accept import accept
from intake.store.database import BLOB_PIECE, open_store
from intake.store.models import Attachment, InboundRaw
from parsers import large_parts, message
from parsers.large_parts import SPOOL_THRESHOLD, set_aside
from parsers.message import parse_message

ZACK = "Zack Morris <zack.morris@bayside.example>"
QUESTION = "Case Type: Ask a Question\nModule: Census\nDescription: Where is the household report?\n"
EXPORT = random.Random(12).randbytes(3 * SPOOL_THRESHOLD + 1234)  # over the threshold once encoded


def _big_message() -> bytes:
    return compose(ZACK, "Household report", QUESTION, attachments=(
        ("export.zip", "application/zip", EXPORT), ("notes.txt", "text/plain", b"just some notes\n")))


def _stored_files(database_url: str) -> list[tuple[str, bytes]]:
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            return [(row.filename, row.content) for row in
                    connection.execute(select(Attachment.filename, Attachment.content).order_by(Attachment.id))]
    finally:
        engine.dispose()


def _stored_raw(database_url: str) -> list[bytes]:
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            return list(connection.scalars(select(InboundRaw.raw).order_by(InboundRaw.inbound_message_id)))
    finally:
        engine.dispose()


def test_a_large_attachment_is_set_aside_and_decoded_byte_for_byte() -> None:
    raw = _big_message()
    aside = set_aside(raw)
    assert len(aside.runs) == 1 and len(aside.message) < SPOOL_THRESHOLD  # the parser never sees the base64
    parsed = parse_message(raw)
    export, notes = parsed.attachments
    assert (export.filename, export.content_type, export.sniffed_type) == ("export.zip", "application/zip", None)
    assert export.content == EXPORT and notes.content == b"just some notes\n"
    assert "Where is the household report?" in parsed.text


def test_the_parse_is_the_same_as_without_setting_aside(monkeypatch: pytest.MonkeyPatch) -> None:
    raw = _big_message()
    streamed = parse_message(raw)
    monkeypatch.setattr(message, "set_aside", lambda raw: set_aside(raw, threshold=len(raw) + 1))
    whole = parse_message(raw)
    assert streamed.attachments == whole.attachments
    assert (streamed.text, streamed.html, streamed.headers, streamed.defects) == (
        whole.text, whole.html, whole.headers, whole.defects)


def test_a_large_text_part_is_read_as_text() -> None:
    text = "Case Type: Ask a Question\nModule: Census\nDescription: " + "all the households " * 80_000 + "\n"
    mail = email.message.EmailMessage()
    mail["From"], mail["To"], mail["Subject"] = ZACK, "support@intake.example", "Long"
    mail.set_content(text, cte="base64")
    raw = mail.as_bytes()
    assert set_aside(raw).runs  # the run is found, and given back because the text is read
    assert parse_message(raw).text.strip() == text.strip()


@pytest.mark.parametrize("tail", [b"", b"QQ", b"QUI", b"Q", b"QQ==", b"QQ==QUJD", b"!!QU@JD", b"\xc3\xa9"])
def test_broken_base64_decodes_as_b64decode_decodes_it(tail: bytes) -> None:
    body = base64.encodebytes(EXPORT[:SPOOL_THRESHOLD]).replace(b"\n", b"\r\n")
    raw = b"Content-Type: application/zip\r\n\r\n" + body + tail
    aside = set_aside(raw, threshold=1024)
    payload = aside.message.split(b"\r\n\r\n", 1)[1].decode("ascii", "surrogateescape")
    assert aside.holds(payload) and aside.expanded(payload) == raw.split(b"\r\n\r\n", 1)[1].decode(
        "ascii", "surrogateescape")
    try:
        expected: bytes | type[Exception] = base64.b64decode(aside.expanded(payload))
    except (binascii.Error, ValueError) as exc:
        expected = type(exc)
    try:
        got: bytes | type[Exception] = aside.decoded_base64(payload)
    except (binascii.Error, ValueError) as exc:
        got = type(exc)
    assert got == expected


def test_decoding_goes_through_the_spool_past_the_threshold(monkeypatch: pytest.MonkeyPatch) -> None:
    spooled: list[int] = []
    real = large_parts.tempfile.SpooledTemporaryFile

    def spool(*args: object, **kwargs: object) -> object:
        made = real(*args, **kwargs)  # type: ignore[call-overload]
        spooled.append(kwargs["max_size"])  # type: ignore[arg-type]
        return made

    monkeypatch.setattr(large_parts.tempfile, "SpooledTemporaryFile", spool)
    assert parse_message(_big_message()).attachments[0].content == EXPORT
    assert spooled == [SPOOL_THRESHOLD]


def test_through_ingest_the_file_and_the_raw_message_are_stored_as_sent(intake: Intake, database_url: str) -> None:
    raw = _big_message()
    assert intake.ingest(raw).code == 0
    assert _stored_files(database_url) == [("export.zip", EXPORT), ("notes.txt", b"just some notes\n")]
    assert _stored_raw(database_url) == [raw]


@pytest.mark.parametrize("size", [1, BLOB_PIECE - 1, BLOB_PIECE, BLOB_PIECE + 1])
def test_a_file_of_any_size_is_stored_as_sent(intake: Intake, database_url: str, size: int) -> None:
    content = random.Random(size).randbytes(size)  # SQLite writes it in pieces of BLOB_PIECE
    assert intake.ingest(compose(ZACK, "Household report", QUESTION,
                                 attachments=(("export.zip", "application/zip", content),))).code == 0
    assert _stored_files(database_url) == [("export.zip", content)]


def test_through_the_worker_the_file_and_the_raw_message_are_stored_as_sent(intake: Intake, database_url: str,
                                                                           tmp_path: Path) -> None:
    raw = _big_message()
    store = open_store(database_url)
    try:
        assert not accept(store, raw, "smtp:test").duplicate
        assert process_stored(store, load_config(intake.config)) == 1
    finally:
        store.engine.dispose()
    assert _stored_files(database_url) == [("export.zip", EXPORT), ("notes.txt", b"just some notes\n")]
    assert _stored_raw(database_url) == [raw]
