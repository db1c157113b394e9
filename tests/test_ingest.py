"""`intake ingest`: files, Maildirs and mboxes in; bad input gets an outcome and a clear answer."""
from __future__ import annotations

import mailbox
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import pytest

from conftest import DATA, Intake, compose, refuse_cases_titled
from intake.act import parsing, worker
from intake.act.parsing import PARSE_AHEAD_MAX_BYTES
from intake.act.pool import GroupProcessing
from intake.mailin.accept import accept
from intake.store.database import open_store
from parsers.submission import Submission, parse

ZACK = "Zack Morris <zack.morris@bayside.example>"
QUESTION = "Case Type: Ask a Question\nModule: Census\nDescription: Where is the household report?\n"


def test_a_message_not_in_mime_is_read_as_plain_text(intake: Intake) -> None:
    raw = (b"From: zack.morris@bayside.example\r\nTo: support@intake.example\r\n"
           b"Subject: Households\r\nMessage-ID: <plain-822@bayside.example>\r\n\r\n" + QUESTION.encode())
    ran = intake.ingest(raw)
    assert ran.code == 0 and "case_created" in ran.out
    assert intake.cases()[-1]["fields"]["Module"] == "Census"


def test_empty_body_gets_needs_information(intake: Intake) -> None:
    intake.ingest(compose(ZACK, "Help", ""))
    assert intake.last_outcome()["outcome"] == "needs_information"
    reply = intake.last_reply_text()
    assert "no text" in reply and "Case Type" in reply


def test_body_without_template_gets_needs_information(intake: Intake) -> None:
    intake.ingest(compose(ZACK, "Help", "Hi, grades are broken again, can you look?\n\nThanks"))
    assert intake.last_outcome()["outcome"] == "needs_information"
    assert "could not find a case template" in intake.last_reply_text()


def test_unknown_case_type_lists_the_known_ones(intake: Intake) -> None:
    intake.ingest(compose(ZACK, "Help", "Case Type: Pizza Order\nDescription: Two large\n"))
    assert intake.last_outcome()["outcome"] == "needs_information"
    reply = intake.last_reply_text()
    assert "'Pizza Order' is not a case type" in reply
    assert "Request Technical Services" in reply and "Data Restore" in reply


def test_oversize_message_is_refused_with_the_limit(tmp_path: Path, database_url: str,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    small = Intake(tmp_path, database_url, capsys, max_message_bytes=20_000)
    assert small.run("contacts", "import", str(DATA / "contacts.csv")).code == 0
    raw = compose(ZACK, "Big", QUESTION, attachments=(("scan.pdf", "application/pdf", b"%PDF" + b"x" * 40_000),))
    ran = small.ingest(raw)
    assert ran.code == 0
    last = small.last_outcome()
    assert last["outcome"] == "refused" and last["size"] == len(raw)
    assert "larger than the 20 KB we accept" in small.last_reply_text()
    assert small.cases() == []


def test_a_file_that_is_not_email_is_recorded_and_not_answered(intake: Intake, tmp_path: Path) -> None:
    png = tmp_path / "picture.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    ran = intake.run("ingest", str(png))
    assert ran.code == 0
    assert "ignored" in ran.out and "not an email" in ran.out
    assert intake.last_outcome()["outcome"] == "ignored"
    assert intake.outbox() == []


def test_unreadable_paths_make_a_nonzero_exit_and_the_rest_still_runs(intake: Intake, tmp_path: Path) -> None:
    good = intake.write(compose(ZACK, "Households", QUESTION))
    ran = intake.run("ingest", str(tmp_path / "missing.eml"), str(good))
    assert ran.code == 1
    assert "missing.eml: error: no such file" in ran.out
    assert "case_created" in ran.out


def test_maildir_and_mbox_are_read(intake: Intake, tmp_path: Path) -> None:
    folder = mailbox.Maildir(str(tmp_path / "Maildir"), create=True)
    folder.add(compose(ZACK, "One", QUESTION))
    folder.add(compose(ZACK, "Two", QUESTION))
    box = mailbox.mbox(str(tmp_path / "archive.mbox"), create=True)
    box.add(compose(ZACK, "Three", QUESTION))
    box.flush()
    ran = intake.run("ingest", str(tmp_path / "Maildir"), str(tmp_path / "archive.mbox"))
    assert ran.code == 0
    assert ran.out.count("case_created") == 3
    assert sorted(c["subject"] for c in intake.cases()) == ["One", "Three", "Two"]


def test_the_same_message_twice_makes_one_case(intake: Intake) -> None:
    raw = compose(ZACK, "Households", QUESTION, message_id="<once@bayside.example>")
    intake.ingest(raw)
    again = intake.ingest(raw)
    assert "duplicate" in again.out
    assert len(intake.cases()) == 1 and len(intake.outbox()) == 1


def test_running_again_processes_what_an_earlier_run_stored_and_did_not_process(
        intake: Intake, tmp_path: Path, database_url: str) -> None:
    # An earlier run was stopped after storing "Stored only" and before processing it; "Done" it
    # finished. The same command again processes the first, skips the second, and does the new one.
    stored_only = compose(ZACK, "Stored only", QUESTION, message_id="<stored@bayside.example>")
    done = compose(ZACK, "Done", QUESTION, message_id="<done@bayside.example>")
    new = compose(ZACK, "New", QUESTION, message_id="<new@bayside.example>")
    store = open_store(database_url)
    try:
        earlier = accept(store, stored_only, "file:earlier run")
    finally:
        store.engine.dispose()
    assert intake.ingest(done).code == 0
    box = mailbox.mbox(str(tmp_path / "again.mbox"), create=True)
    for raw in (stored_only, done, new):
        box.add(raw)
    box.flush()
    ran = intake.run("ingest", str(tmp_path / "again.mbox"))
    lines = ran.out.splitlines()
    assert ran.code == 0
    assert f"stored before as message {earlier.id}, processed now: case_created #" in lines[0], lines[0]
    assert "duplicate of message 2 (case_created); skipped" in lines[1] and ": case_created #" in lines[2]
    assert sorted(c["subject"] for c in intake.cases()) == ["Done", "New", "Stored only"]
    assert [m["outcome"] for m in intake.messages()] == ["case_created"] * 3
    assert len(intake.outbox()) == 3  # one acknowledgement each, none twice


def test_a_large_mbox_is_stored_in_groups_and_reported_message_by_message_in_order(
        tmp_path: Path, database_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    intake = Intake(tmp_path, database_url, capsys,
                    extra_config="[limits]\ncases_per_hour_per_sender = 1000\ncases_per_hour_per_account = 1000\n")
    assert intake.run("contacts", "import", str(DATA / "contacts.csv")).code == 0
    box = mailbox.mbox(str(tmp_path / "archive.mbox"), create=True)
    repeated = compose(ZACK, "Said twice", QUESTION, message_id="<twice@bayside.example>")
    for n in range(120):  # more than two groups; the repeat sits in another group than its first copy
        box.add(repeated if n in (3, 77) else compose(ZACK, f"Report {n}", QUESTION, message_id=f"<r{n}@x>"))
    box.add(b"Subject: no body, no sender\n\n")  # stored, and an outcome of its own
    box.flush()
    ran = intake.run("ingest", str(tmp_path / "archive.mbox"), str(tmp_path / "missing.eml"))
    lines = ran.out.splitlines()
    assert ran.code == 1 and "missing.eml: error: no such file" in ran.out
    numbered = [line.partition("archive.mbox:")[2] for line in lines if "archive.mbox:" in line]
    assert [line.split(":")[0] for line in numbered] == [str(n) for n in range(1, 122)]
    assert "case_created" in numbered[3] and "duplicate of message 4 (case_created); skipped" in numbered[77]
    assert sum(": case_created #" in line for line in numbered) == 119
    assert len(intake.cases()) == 119 and len(intake.messages()) == 120


def test_on_sqlite_the_next_group_is_parsed_in_a_process_of_its_own_from_the_bytes_stored(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{tmp_path / 'intake.db'}"
    intake = Intake(tmp_path, url, capsys,
                    extra_config="[limits]\ncases_per_hour_per_sender = 1000\ncases_per_hour_per_account = 1000\n")
    assert intake.run("contacts", "import", str(DATA / "contacts.csv")).code == 0
    # An earlier run stored this one and stopped: the mbox's copy under the same Message-ID has other
    # bytes, and what is processed must be the stored copy, not what was parsed of the mbox's.
    store = open_store(url)
    try:
        accept(store, compose(ZACK, "Stored first", QUESTION, message_id="<earlier@bayside.example>"), "file:earlier")
    finally:
        store.engine.dispose()
    in_this_process: list[int] = []

    def counted(raw: bytes, *args: object, **kwargs: object) -> Submission:
        in_this_process.append(len(raw))
        return parse(raw, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(worker, "parse", counted)
    large = compose(ZACK, "Scanned form", QUESTION,
                    attachments=(("form.pdf", "application/pdf", b"%PDF-1.4\n" + bytes(range(256)) * 5000),))
    assert len(large) > PARSE_AHEAD_MAX_BYTES
    box = mailbox.mbox(str(tmp_path / "archive.mbox"), create=True)
    for n in range(120):  # three groups
        box.add(compose(ZACK, f"Report {n}", QUESTION, message_id=f"<r{n}@x>"))
        if n == 60:
            box.add(compose(ZACK, "Re: Report 59", "It is for 2026.", headers={"In-Reply-To": "<r59@x>"}))
            box.add(large)
            box.add(compose(ZACK, "Other bytes", QUESTION, message_id="<earlier@bayside.example>"))
    box.flush()
    ran = intake.run("ingest", str(tmp_path / "archive.mbox"))
    assert ran.code == 0, ran.err
    # Parsed here: only the message too large to send, and the earlier copy; the rest came parsed.
    assert len(in_this_process) == 2 and len(large) in in_this_process
    cases = intake.cases()
    subjects = [c["subject"] for c in cases]
    assert len(cases) == 122 and "Stored first" in subjects and "Other bytes" not in subjects
    assert sum(": comment_added #" in line for line in ran.out.splitlines()) == 1
    scanned = intake.show(next(c["number"] for c in cases if c["subject"] == "Scanned form"))
    assert [a["filename"] for a in scanned["attachments"]] == ["form.pdf"]


def test_a_failed_parse_ahead_leaves_the_parse_to_the_command() -> None:
    broken: Future[list[Submission | None]] = Future()
    broken.set_exception(BrokenProcessPool("the parsing process was killed"))
    with ThreadPoolExecutor(1) as parser:
        processing = GroupProcessing(None, None, parser=parser)  # type: ignore[arg-type]
        assert processing.parses_ahead
        assert processing.parsed(broken, 3) == [None, None, None]
        assert not processing.parses_ahead and processing.parse_ahead([b"x"]) is None


def test_a_message_whose_parse_ahead_raises_is_left_to_the_command_and_the_others_come_parsed(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    intake = Intake(tmp_path, f"sqlite:///{tmp_path / 'intake.db'}", capsys)
    parsing.start_parser(str(intake.config))
    real_parse = parsing.parse

    def parse_with_a_bug(raw: bytes, *args: object, **kwargs: object) -> Submission:
        if b"Subject: Trips the bug" in raw:
            raise IndexError("a bug met on hostile input")
        return real_parse(raw, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(parsing, "parse", parse_with_a_bug)
    good, bad = compose(ZACK, "Households", QUESTION), compose(ZACK, "Trips the bug", QUESTION)
    first, second, too_large = parsing.parse_in_worker([good, bad, None])
    assert first is not None and first.subject.text == "Households"
    assert second is None and too_large is None  # both parsed by the command, which records any failure


def test_a_message_failing_in_a_group_is_recorded_and_the_rest_of_the_group_is_processed(
        tmp_path: Path, database_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    # A group shares one transaction; the failure must not undo or lose the others, nor the reply
    # in the same group to a case made just before it.
    intake = Intake(tmp_path, database_url, capsys)
    assert intake.run("contacts", "import", str(DATA / "contacts.csv")).code == 0
    store = open_store(database_url)
    refuse_cases_titled(store.engine, "Broken")
    store.engine.dispose()
    box = mailbox.mbox(str(tmp_path / "group.mbox"), create=True)
    box.add(compose(ZACK, "First", QUESTION, message_id="<first@bayside.example>"))
    box.add(compose(ZACK, "Broken", QUESTION, message_id="<broken@bayside.example>"))
    box.add(compose(ZACK, "Re: First", "It is for 2026.", headers={"In-Reply-To": "<first@bayside.example>"},
                    message_id="<reply@bayside.example>"))
    box.add(compose(ZACK, "Fourth", QUESTION, message_id="<fourth@bayside.example>"))
    box.flush()
    ran = intake.run("ingest", str(tmp_path / "group.mbox"))
    lines = ran.out.splitlines()
    assert lines[0].startswith(f"{tmp_path / 'group.mbox'}:1: case_created #1")
    assert ": failed: internal error, kept for replay:" in lines[1] and "refused by the test's trigger" in lines[1]
    assert ": comment_added #1" in lines[2] and ": case_created #" in lines[3]
    assert sorted(c["subject"] for c in intake.cases()) == ["First", "Fourth"]
    assert sorted(m["outcome"] for m in intake.messages()) == ["case_created", "case_created", "comment_added",
                                                               "failed"]
    answers = sorted(m["subject"].partition("] ")[2] for m in intake.outbox())
    assert answers == ["First", "Fourth"]  # an acknowledgement each; the failed message queued nothing


def test_auto_replies_are_ignored_and_never_answered(intake: Intake) -> None:
    intake.ingest(compose(ZACK, "Out of office", "I am away until Monday.",
                          headers={"Auto-Submitted": "auto-replied"}))
    assert intake.last_outcome()["outcome"] == "ignored"
    intake.ingest(compose("Campus Support <support@intake.example>", "[Case #1] loop", QUESTION))
    assert intake.last_outcome()["outcome"] == "ignored"
    assert intake.outbox() == []


def test_template_request_returns_blank_templates(intake: Intake) -> None:
    intake.ingest(compose(ZACK, "template", ""))
    assert intake.last_outcome()["outcome"] == "template_sent"
    every = intake.last_reply_text()
    assert all(name in every for name in ("Application Issue", "Data Restore", "Request Technical Services"))
    intake.ingest(compose(ZACK, "Template data restore", ""))
    one = intake.last_reply_text()
    assert "Written Permission" in one and "Steps to Reproduce" not in one


def test_html_only_mail_makes_a_case(intake: Intake) -> None:
    html = ("<html><body><p><b>Case Type:</b> Ask a Question</p><p><b>Module:</b> Scheduling</p>"
            "<p><b>Description:</b> How do I copy a course section?</p></body></html>")
    ran = intake.ingest(compose(ZACK, "Sections", html=html))
    assert "case_created" in ran.out, ran.out
    assert intake.cases()[-1]["fields"]["Module"] == "Scheduling"


def test_attachments_are_stored_with_the_case(intake: Intake) -> None:
    shot = b"\x89PNG\r\n\x1a\n" + b"\x01" * 100
    intake.ingest(compose(ZACK, "Households", QUESTION, attachments=(("../../screen shot.png", "image/png", shot),)))
    case = intake.show(intake.cases()[-1]["number"])
    [attachment] = case["attachments"]
    assert attachment["filename"] == "screen shot.png"
    assert attachment["size"] == len(shot) and attachment["content_type"] == "image/png"


def test_dry_run_writes_nothing(intake: Intake) -> None:
    path = intake.write(compose(ZACK, "Households", QUESTION))
    ran = intake.run("ingest", "--dry-run", str(path))
    assert ran.code == 0
    assert "case_created" in ran.out and "routed to Application Support" in ran.out
    assert "reply that would be sent" in ran.out
    assert intake.cases() == [] and intake.outbox() == [] and intake.messages() == []


def test_dry_run_of_a_status_request_shows_the_status_mail(intake: Intake) -> None:
    intake.ingest(compose(ZACK, "Households", QUESTION))
    path = intake.write(compose(ZACK, "status", ""))
    ran = intake.run("ingest", "--dry-run", str(path))
    assert ran.code == 0, ran.err
    assert "outcome: status_sent (dry run: nothing written)" in ran.out
    assert "Subject: Your cases" in ran.out and "Households" in ran.out
    assert len(intake.messages()) == 1  # only the case; the dry run stored nothing
