"""The Maildir sink names each message by its stable Message-ID, so a redelivery is skipped, not doubled.

After a kill between writing a message and recording it as sent, the outbox
sends it again; the Maildir must still hold it once, wherever a mail client
has moved it (`new/` → `cur/` with flags).
"""
from __future__ import annotations

import mailbox
from pathlib import Path

from intake.mailout.delivery import MaildirSink, TemporaryFailure, deliver_to_maildir

RAW = b"From: support@intake.example\r\nSubject: x\r\nMessage-ID: <a.1@intake.example>\r\n\r\nbody\r\n"


def test_the_same_message_id_is_written_once(tmp_path: Path) -> None:
    maildir = tmp_path / "var" / "outgoing"  # its parents need not exist
    first = deliver_to_maildir(RAW, maildir, "a.1@intake.example")
    assert first is not None and (maildir / "new" / first).read_bytes() == RAW
    assert deliver_to_maildir(RAW, maildir, "a.1@intake.example") is None
    assert deliver_to_maildir(RAW, maildir, "a.2@intake.example") is not None
    assert len(list((maildir / "new").iterdir())) == 2 and not list((maildir / "tmp").iterdir())
    assert len(mailbox.Maildir(str(maildir), factory=None, create=False)) == 2  # a valid Maildir for mail clients


def test_a_message_a_client_already_read_is_not_written_again(tmp_path: Path) -> None:
    name = deliver_to_maildir(RAW, tmp_path, "a.1@intake.example")
    assert name is not None
    (tmp_path / "new" / name).rename(tmp_path / "cur" / f"{name}:2,S")
    note = MaildirSink(tmp_path).send("support@intake.example", ["zack@bayside.example"], RAW, "a.1@intake.example")
    assert note == "already in the Maildir (delivered before)"
    assert list((tmp_path / "new").iterdir()) == []


def test_one_sink_makes_the_folders_once_and_finds_read_mail_with_or_without_flags(tmp_path: Path) -> None:
    maildir = tmp_path / "outgoing"
    sink = MaildirSink(maildir)
    name = sink.send("support@intake.example", ["zack@bayside.example"], RAW, "a.1@intake.example")
    assert name is None and len(list((maildir / "new").iterdir())) == 1  # None: written, nothing to note
    first = next((maildir / "new").iterdir()).name
    # Moved to cur/ (flags or none) before the next pass: that pass's sink finds it there.
    (maildir / "new" / first).rename(maildir / "cur" / first)
    later = MaildirSink(maildir)
    again = later.send("support@intake.example", [], RAW, "a.1@intake.example")
    assert again == "already in the Maildir (delivered before)"
    # A folder removed during a pass is a temporary failure, and the next try makes it again.
    for entry in (maildir / "new").iterdir():
        entry.unlink()
    (maildir / "new").rmdir()
    try:
        later.send("support@intake.example", [], RAW, "a.2@intake.example")
    except TemporaryFailure as exc:
        assert "cannot write to the Maildir" in str(exc)
    else:
        raise AssertionError("a missing new/ went unnoticed")
    assert later.send("support@intake.example", [], RAW, "a.2@intake.example") is None
    assert len(list((maildir / "new").iterdir())) == 1
