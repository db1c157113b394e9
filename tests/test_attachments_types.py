"""An attachment's type is sniffed from its bytes as well as taken from the mail; a disagreement is shown."""
from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

from conftest import Intake, compose
from parsers.attachments import SniffedType, sniff

ZACK = "Zack Morris <zack.morris@bayside.example>"
QUESTION = "Case Type: Ask a Question\nModule: Census\nDescription: Where is the household report?\n"
# The start of a Windows program (an MS-DOS header), and of a PNG image.
PROGRAM = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + b"\x00" * 48
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02\x00\x00\x00"


def test_a_program_sent_as_a_pdf_is_stored_with_both_types_and_shown(intake: Intake) -> None:
    intake.ingest(compose(ZACK, "Household report", QUESTION, attachments=(
        ("invoice.pdf", "application/pdf", PROGRAM),
        ("screen.png", "image/png", PNG),
        ("notes.txt", "text/plain", b"just some notes\n"))))

    [case] = intake.cases()
    program, image, notes = intake.show(case["number"])["attachments"]
    assert (program["content_type"], program["sniffed_type"], program["type_mismatch"]) == (
        "application/pdf", "application/vnd.microsoft.portable-executable", True)
    assert (image["sniffed_type"], image["type_mismatch"]) == ("image/png", False)
    assert (notes["sniffed_type"], notes["type_mismatch"]) == (None, False)  # text carries no signature
    lines = intake.run("show", str(case["number"])).out.splitlines()
    [shown_program] = [line for line in lines if "invoice.pdf" in line]
    assert shown_program.endswith("TYPE MISMATCH: given as application/pdf, the bytes are "
                                  "application/vnd.microsoft.portable-executable")
    [shown_image] = [line for line in lines if "screen.png" in line]
    assert "MISMATCH" not in shown_image


@pytest.mark.parametrize(("content", "declared", "sniffed", "mismatch"), [
    (PROGRAM, "application/octet-stream", "application/vnd.microsoft.portable-executable", False),
    (PROGRAM, "image/png", "application/vnd.microsoft.portable-executable", True),
    (PNG, "image/x-png", "image/png", False),
    (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00", "image/jpg", "image/jpeg", False),
    (b"%PDF-1.7\n", "application/pdf", "application/pdf", False),
    (b"<html><body>hello</body></html>", "text/plain", "text/html", False),
    (b"<html><body>hello</body></html>", "image/png", "text/html", True),
    (b"Name,Grade\nAnne,A\n", "text/csv", None, False),
    (b"", "application/pdf", None, False),
])
def test_sniffing(content: bytes, declared: str, sniffed: str | None, mismatch: bool) -> None:
    assert sniff(content, declared) == SniffedType(sniffed, mismatch)


def test_a_zip_container_is_not_a_mismatch_for_the_formats_built_on_it() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("word/document.xml", "<w:document/>")
    docx = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    assert sniff(buffer.getvalue(), docx).mismatch is False
    assert sniff(buffer.getvalue(), "application/zip").mismatch is False
    assert sniff(buffer.getvalue(), "image/gif") == SniffedType("application/zip", True)


def test_a_file_staff_attach_is_sniffed_too(intake: Intake, tmp_path: Path) -> None:
    intake.ingest(compose(ZACK, "Household report", QUESTION))
    [case] = intake.cases()
    disguised = tmp_path / "report.pdf"
    disguised.write_bytes(PROGRAM)

    assert intake.run("comment", str(case["number"]), "--body", "See the report.", "--internal",
                      "--attach", str(disguised)).code == 0

    [comment] = intake.show(case["number"])["comments"]
    [attached] = comment["attachments"]
    assert (attached["content_type"], attached["type_mismatch"]) == ("application/pdf", True)
    shown = intake.run("show", str(case["number"])).out
    assert "[attached: report.pdf] TYPE MISMATCH: given as application/pdf" in shown
