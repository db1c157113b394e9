"""Attachment names from mail are hostile: what is stored is a bare, safe name, and nothing is written anywhere."""
from __future__ import annotations

from pathlib import Path

import pytest

from conftest import DATA, Intake
from parsers.attachments import MAX_FILENAME_BYTES, MAX_FILENAME_LENGTH, decoded_filename, sanitise_filename

HOSTILE = DATA / "attachments" / "hostile_filenames.eml"


def _files_under(root: Path) -> set[Path]:
    return {path for path in root.rglob("*") if path.is_file()}


def test_hostile_names_are_stored_sanitised_and_nothing_is_written(intake: Intake, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    # Run from deep inside the test's directory, so that a name used as a relative path would land in it.
    deep = tmp_path / "data" / "dir" / "within"
    deep.mkdir(parents=True)
    monkeypatch.chdir(deep)
    message = intake.write(HOSTILE.read_bytes())
    before = _files_under(tmp_path)

    assert intake.run("ingest", str(message)).code == 0

    [case] = intake.cases()
    names = [a["filename"] for a in intake.show(case["number"])["attachments"]]
    assert names == ["passwd", "win.ini", "_con.txt", "a" * 196 + ".pdf", "invoicefdp.exe", "report.pdf",
                     "shadow", "cron.d", "boot.ini"]
    new = {path.relative_to(tmp_path) for path in _files_under(tmp_path) - before}
    assert all(path.name.startswith("intake.db") for path in new), new  # only the SQLite database and its journal
    shown = intake.run("show", str(case["number"])).out
    assert "\u202e" not in shown and "\x00" not in shown
    assert "  Attachment 5: invoicefdp.exe (application/pdf" in shown  # the fifth, numbered for `intake attachment`


@pytest.mark.parametrize(("written", "stored"), [
    ("../../etc/passwd", "passwd"),
    ("..\\..\\win.ini", "win.ini"),
    ("C:\\Users\\jane\\report.docx", "report.docx"),
    ("con.txt", "_con.txt"),
    ("NUL", "_NUL"),
    ("lpt1.tar.gz", "_lpt1.tar.gz"),
    ("console.txt", "console.txt"),
    ("invoice\u202efdp.exe", "invoicefdp.exe"),
    ("bad\x00\x1bname\n.txt", "badname.txt"),
    ("..hidden", "hidden"),
    ("report.pdf. . ", "report.pdf"),
    ("what?: a <report>.pdf", "what__ a _report_.pdf"),
    ("\u2215etc\u2215passwd", "_etc_passwd"),
    ("two\u2028lines\u00a0and  spaces.txt", "two lines and spaces.txt"),
    ("../..", "attachment-2.pdf"),
    ("", "attachment-2.pdf"),
])
def test_sanitised_names(written: str, stored: str) -> None:
    assert sanitise_filename(written, 2, "application/pdf") == stored


def test_long_names_are_bounded_in_characters_and_bytes_and_keep_their_extension() -> None:
    ascii_name = sanitise_filename("x" * 300 + ".pdf", 1, "application/pdf")
    assert len(ascii_name) == MAX_FILENAME_LENGTH and ascii_name.endswith(".pdf")
    wide = sanitise_filename("é" * 300 + ".pdf", 1, "application/pdf")
    assert len(wide.encode("utf-8")) <= MAX_FILENAME_BYTES and wide.endswith(".pdf")
    no_extension = sanitise_filename("y" * 100_000, 1, "application/octet-stream")
    assert no_extension == "y" * MAX_FILENAME_LENGTH


def test_encoded_words_are_decoded_before_the_name_is_cleaned() -> None:
    decoded = decoded_filename("=?utf-8?q?..=2F..=2Fetc=2Fpasswd?=")
    assert decoded == "../../etc/passwd"
    assert sanitise_filename(decoded, 1, "text/plain") == "passwd"
    assert decoded_filename("=?x-unknown?q?name?=") == "=?x-unknown?q?name?="  # left as written, then cleaned
