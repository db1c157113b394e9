"""`intake attachment`: a case's file written under its sanitised name, never over a file without --force."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from conftest import Intake, compose
from intake.store.database import open_store
from intake.store.models import Attachment

ZACK = "Zack Morris <zack.morris@bayside.example>"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
LOG = b"2026-12-01 07:10 ERROR 503 Service Unavailable\n"


@pytest.fixture
def with_files(intake: Intake, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Intake:
    raw = compose(ZACK, "[Report an Outage] Campus is down", "Description: Nobody can log in.\n",
                  attachments=(("../../screen shot.png", "image/png", PNG), ("server.log", "text/plain", LOG)))
    assert "case_created #1" in intake.ingest(raw).out
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return intake


def _add_stored(intake: Intake, filename: str, content: bytes) -> None:
    """An attachment whose stored name is hostile, as an older intake or a bug might have kept it."""
    url = next(line.split('"')[1] for line in intake.config.read_text().splitlines() if line.startswith("url ="))
    store = open_store(url)
    with store.session() as session, session.begin():
        session.add(Attachment(case_number=1, filename=filename, content_type="text/plain", size=len(content),
                               sha256=hashlib.sha256(content).hexdigest(), content=content))
    store.engine.dispose()


def test_by_index_writes_the_sanitised_name_in_the_working_directory(with_files: Intake) -> None:
    ran = with_files.run("attachment", "1", "1")
    assert ran.code == 0, ran.err
    written = Path.cwd() / "screen shot.png"
    assert written.read_bytes() == PNG
    assert sorted(p.name for p in Path.cwd().iterdir()) == ["screen shot.png"]
    assert f"wrote attachment 1 of case #1 (image/png, {len(PNG)} bytes) to {written}" in ran.out
    assert "Attachment 1: screen shot.png" in with_files.run("show", "1").out


def test_by_name_into_a_folder_with_json(with_files: Intake, tmp_path: Path) -> None:
    folder = tmp_path / "out"
    folder.mkdir()
    ran = with_files.run("attachment", "1", "SERVER.LOG", "--out", str(folder), "--json")
    assert ran.code == 0, ran.err
    shown = ran.json()
    assert shown == {"case": 1, "index": 2, "filename": "server.log", "path": str(folder / "server.log"),  # type: ignore[comparison-overlap]
                     "content_type": "text/plain", "size": len(LOG), "sha256": hashlib.sha256(LOG).hexdigest()}
    assert (folder / "server.log").read_bytes() == LOG


def test_an_existing_file_is_kept_without_force(with_files: Intake) -> None:
    target = Path.cwd() / "server.log"
    target.write_bytes(b"mine")
    ran = with_files.run("attachment", "1", "server.log")
    assert ran.code == 2 and f"{target} exists already; give --force to replace it" in ran.err
    assert target.read_bytes() == b"mine"
    assert with_files.run("attachment", "1", "server.log", "--force").code == 0
    assert target.read_bytes() == LOG


def test_force_replaces_a_symbolic_link_instead_of_writing_through_it(with_files: Intake, tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"keep me")
    os.symlink(victim, Path.cwd() / "server.log")
    assert with_files.run("attachment", "1", "2").code == 2
    assert with_files.run("attachment", "1", "2", "--force").code == 0
    assert victim.read_bytes() == b"keep me"
    assert not (Path.cwd() / "server.log").is_symlink()
    assert (Path.cwd() / "server.log").read_bytes() == LOG


def test_a_hostile_stored_name_is_never_a_path_nor_a_terminal_escape(with_files: Intake, tmp_path: Path) -> None:
    _add_stored(with_files, "../../\x1b]0;owned\x07.bashrc", b"echo owned\n")
    ran = with_files.run("attachment", "1", "3")
    assert ran.code == 0, ran.err
    assert sorted(p.name for p in Path.cwd().iterdir()) == ["]0;owned.bashrc"]
    assert not (tmp_path / ".bashrc").exists()
    assert "\x1b" not in ran.out and "\x07" not in ran.out


@pytest.mark.parametrize("args, error", [
    (("2", "1"), "there is no case #2"),
    (("1", "7"), "case #1 has 3 attachment(s); 7 is not one of them"),
    (("1", "nothing.txt"), "case #1 has no attachment named 'nothing.txt'; it has: 1 'screen shot.png'"),
])
def test_what_names_no_attachment_is_an_error(with_files: Intake, args: tuple[str, ...], error: str) -> None:
    _add_stored(with_files, "server.log", b"another\n")
    ran = with_files.run("attachment", *args)
    assert ran.code == 2 and error in ran.err, ran.err
    assert list(Path.cwd().iterdir()) == []


def test_two_attachments_of_one_name_are_chosen_by_number(with_files: Intake) -> None:
    _add_stored(with_files, "server.log", b"another\n")
    ran = with_files.run("attachment", "1", "server.log")
    assert ran.code == 2 and "2 attachments named 'server.log' (numbers 2, 3); give the number" in ran.err
    assert with_files.run("attachment", "1", "3").code == 0
    assert (Path.cwd() / "server.log").read_bytes() == b"another\n"
