"""Several `intake serve` processes on one database: what they must share, and who does what.

On PostgreSQL any number of daemons, on any number of hosts, serve one
database. They must share the thread secret (a token one writes must verify
on every other), so `serve` refuses to start there without a configured one.
"""
from __future__ import annotations

import email
import mailbox
import os
import re
import signal
import smtplib
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from conftest import DATA, SUPPORT, TEST_SECRET_ENV, Intake, compose, refuse_cases_titled, with_settings
from dovecot import running_dovecot
from intake.act.handlers import Processed
from intake.act.worker import process_messages, process_pass
from intake.cli.ingest import GROUP_MESSAGES
from intake.config import Config, load_config
from intake.mailin.accept import accept
from intake.store.database import Store, open_store
from intake.store.models import Case, Comment, InboundMessage, OutboundMessage
from smtp_helpers import STARTUP_SECONDS, RunningIntake, case_message, intakes_on, wait_until


def _without_configured_secret(intake: Intake) -> None:
    text = intake.config.read_text()
    assert f'secret_env = "{TEST_SECRET_ENV}"\n' in text
    intake.config.write_text(text.replace(f'secret_env = "{TEST_SECRET_ENV}"\n', ""))


def test_serve_refuses_postgresql_without_a_shared_secret_and_says_how_to_set_one(
        tmp_path: Path, database_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    intake = Intake(tmp_path, database_url, capsys)
    _without_configured_secret(intake)
    check = intake.run("serve", "--check")
    if make_url(database_url).get_backend_name() == "postgresql":
        served = intake.run("serve")
        assert served.code == 1
        assert "every intake serve must share one thread secret" in served.err
        assert "set [conversations] secret_env or secret_file" in served.err
        assert check.code == 1
        assert "FAIL  configuration" in check.out and "secret_env or secret_file" in check.out
    else:  # SQLite is one machine's database: the secret generated beside it serves
        assert "ok    configuration" in check.out


def test_commands_that_send_mail_refuse_postgresql_without_a_shared_secret_and_the_others_run(
        tmp_path: Path, database_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    # A token written by a command on one host must verify on every daemon, as a daemon's must.
    intake = _contacts_intake(tmp_path, database_url, capsys)
    _without_configured_secret(intake)
    raw = compose(ZACK, "Households", QUESTION)
    ingested = intake.ingest(raw)
    comment = intake.run("comment", "1", "--body", "Looking into it.")
    listed = intake.run("cases", "--json")
    if make_url(database_url).get_backend_name() == "postgresql":
        for refused in (ingested, comment):
            assert refused.code == 2 and "set [conversations] secret_env or secret_file" in refused.err
        assert intake.run("messages", "--json").json() == []  # nothing was stored by the refused ingest
    else:
        assert ingested.code == 0 and "case_created #1" in ingested.out and comment.code == 0
    assert listed.code == 0  # looking needs no secret


# --- the worker: batches, savepoints, replies that wait -----------------------

ZACK = "Zack Morris <zack.morris@bayside.example>"
QUESTION = "Case Type: Ask a Question\nModule: Census\nDescription: Where is the household report?\n"


def _contacts_intake(tmp_path: Path, database_url: str, capsys: pytest.CaptureFixture[str]) -> Intake:
    intake = Intake(tmp_path, database_url, capsys)
    assert intake.run("contacts", "import", str(DATA / "contacts.csv")).code == 0
    return intake


@contextmanager
def _worker_on(tmp_path: Path, database_url: str, capsys: pytest.CaptureFixture[str]) -> Iterator[tuple[Config, Store]]:
    """A configuration with the test contacts, and a store over its database, for driving the worker directly."""
    intake = _contacts_intake(tmp_path, database_url, capsys)
    store = open_store(database_url)
    try:
        yield load_config(intake.config), store
    finally:
        store.engine.dispose()


def _parent_and_reply(store: Store, **reply_headers: str) -> tuple[int, int]:
    """A new case and the contact's own follow-up to it, stored in that order."""
    first = _stored(store, compose(ZACK, "Households", QUESTION, message_id="<first@bayside.example>"))
    follow_up = _stored(store, compose(ZACK, "Re: Households", "I forgot: it is for 2026.",
                                       headers={"In-Reply-To": "<first@bayside.example>", **reply_headers},
                                       message_id="<second@bayside.example>"))
    return first, follow_up


def _stored(store: Store, raw: bytes) -> int:
    return accept(store, raw, "test").id


def _outcomes(store: Store) -> dict[int, tuple[str | None, int | None]]:
    with store.session() as session:
        return {row.id: (row.outcome, row.case_number) for row in session.scalars(select(InboundMessage))}


def test_one_message_failing_in_a_batch_leaves_the_others_processed_and_answered(
        tmp_path: Path, database_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    with _worker_on(tmp_path, database_url, capsys) as (config, store):
        refuse_cases_titled(store.engine, "Broken")
        ids = [_stored(store, compose(ZACK, subject, QUESTION)) for subject in ("First", "Broken", "Third")]

        heard: list[Processed] = []
        done = process_pass(store, config, on_processed=heard.append)

        outcomes = _outcomes(store)
        assert done.processed == 3 and [p.inbound_id for p in heard] == ids
        assert outcomes[ids[0]][0] == outcomes[ids[2]][0] == "case_created"
        assert outcomes[ids[1]] == ("failed", None)
        with store.session() as session:
            failed = session.get(InboundMessage, ids[1])
            assert failed is not None and "refused by the test's trigger" in (failed.error or "")
            assert session.scalars(select(Case.subject).order_by(Case.number)).all() == ["First", "Third"]
            answered = session.scalars(select(OutboundMessage.inbound_message_id)).all()
        assert sorted(answered) == [ids[0], ids[2]]  # the failed one queued nothing: its savepoint was undone


def test_a_reply_to_a_message_another_worker_holds_waits_for_it_then_joins_its_case(
        tmp_path: Path, postgresql_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    with _worker_on(tmp_path, postgresql_url, capsys) as (config, store):
        first, follow_up = _parent_and_reply(store, References="<first@bayside.example>")
        with store.session() as other_worker, other_worker.begin():
            other_worker.execute(select(InboundMessage.id).where(InboundMessage.id == first).with_for_update())
            meanwhile = process_pass(store, config)
            assert (meanwhile.processed, meanwhile.waiting) == (0, 1)
            assert _outcomes(store)[follow_up] == (None, None)  # not a new case: it waits
        after = process_pass(store, config)

        outcomes = _outcomes(store)
        assert after.processed == 2 and after.waiting == 0
        assert outcomes[first][0] == "case_created"
        assert outcomes[follow_up] == ("comment_added", outcomes[first][1])


def test_a_deadlock_over_two_cases_undoes_the_workers_batch_whole_and_the_next_pass_does_it_once(
        tmp_path: Path, postgresql_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    # Two daemons' workers commenting on the same two cases in opposite orders: the worker's batch
    # holds case A (its first comment) and waits for case B, which the other transaction holds while
    # it waits for case A. PostgreSQL breaks the cycle by aborting the transaction whose deadlock
    # check runs first: the worker's here (1 s, against the other's 60 s). Its whole batch is undone
    # and left for the next pass, which comments each reply once.
    with _worker_on(tmp_path, postgresql_url, capsys) as (config, store):
        subjects = ("Households", "Transcripts")
        parents = [_stored(store, compose(ZACK, subject, QUESTION, message_id=f"<p{n}@bayside.example>"))
                   for n, subject in enumerate(subjects)]
        process_messages(store, config, parents)
        case_a, case_b = (_outcomes(store)[parent][1] for parent in parents)
        replies = [_stored(store, compose(ZACK, f"Re: {subject}", "It is for 2026.",
                                          headers={"In-Reply-To": f"<p{n}@bayside.example>"},
                                          message_id=f"<r{n}@bayside.example>"))
                   for n, subject in enumerate(subjects)]
        first_try: dict[int, Processed] = {}
        worker = threading.Thread(target=lambda: first_try.update(process_messages(store, config, replies)))

        def backends_waiting_on_a_lock() -> int:
            with store.engine.connect() as watching:  # a fresh transaction: pg_stat_activity is read once in one
                return int(watching.scalar(text(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                    " AND datname = current_database()")) or 0)

        with store.engine.connect() as other:
            other.execute(text("SET deadlock_timeout = '60s'"))
            other.execute(text("SELECT number FROM cases WHERE number = :n FOR UPDATE"), {"n": case_b})
            worker.start()
            wait_until(lambda: backends_waiting_on_a_lock() >= 1, timeout=60, what="the worker waiting for case B")
            other.execute(text("UPDATE cases SET priority = priority WHERE number = :n"), {"n": case_a})
            other.commit()  # reached once the worker's transaction is aborted and its lock on case A gone
        worker.join(60)
        assert not worker.is_alive()
        assert first_try == {} and [_outcomes(store)[r] for r in replies] == [(None, None)] * 2

        again = process_messages(store, config, replies)
        assert sorted(again) == replies
        assert [_outcomes(store)[r] for r in replies] == [("comment_added", case_a), ("comment_added", case_b)]
        with store.session() as session:
            comments = session.scalars(select(Comment.case_number).order_by(Comment.case_number)).all()
        assert comments == [case_a, case_b]  # one each: nothing of the undone batch was kept


def test_a_reply_stored_before_its_parent_is_processed_joins_the_case_in_the_same_pass(
        tmp_path: Path, database_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    with _worker_on(tmp_path, database_url, capsys) as (config, store):
        first, follow_up = _parent_and_reply(store)
        done = process_pass(store, config)
        outcomes = _outcomes(store)
        assert done.processed == 2
        assert outcomes[follow_up] == ("comment_added", outcomes[first][1])


def test_on_sqlite_a_message_another_process_took_after_the_claim_is_left_alone(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # SQLite has no row locks: a group is claimed by reading, and `intake serve` beside `intake ingest` may
    # process one of its messages before the group's transaction takes the write lock with its first update.
    url = f"sqlite:///{tmp_path / 'intake.db'}"
    with _worker_on(tmp_path, url, capsys) as (config, store):
        ids = [_stored(store, compose(ZACK, subject, QUESTION, message_id=f"<{n}@bayside.example>"))
               for n, subject in enumerate(("Households", "Transcripts", "Schedules"))]
        other = open_store(url)
        taken_by_the_other: list[Processed] = []

        def the_other_process_first(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
            if statement.startswith("UPDATE inbound_messages") and not taken_by_the_other:
                taken_by_the_other.extend(process_messages(other, config, [ids[1]]).values())

        event.listen(store.engine, "before_cursor_execute", the_other_process_first)
        try:
            ours = process_messages(store, config, ids)
        finally:
            event.remove(store.engine, "before_cursor_execute", the_other_process_first)
            other.engine.dispose()
        outcomes = _outcomes(store)
        with store.session() as session:
            cases = session.scalars(select(Case.subject)).all()
            answered = session.scalars(select(OutboundMessage.inbound_message_id)).all()
    assert [one.inbound_id for one in taken_by_the_other] == [ids[1]]
    assert sorted(ours) == [ids[0], ids[2]]  # the second is the other's: not processed here again
    assert [outcomes[i][0] for i in ids] == ["case_created"] * 3
    assert sorted(cases) == ["Households", "Schedules", "Transcripts"]  # one case each, none twice
    assert sorted(answered) == ids  # one acknowledgement each


def test_ingest_on_postgresql_processes_its_groups_in_worker_processes_and_replies_join_their_cases(
        tmp_path: Path, postgresql_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    # More groups than processes: two processes take them while the command stores the next. The first
    # message of each later group replies to the last of the group before, which the other process may
    # still have: it must wait for it and join its case, never become a case of its own.
    intake = _contacts_intake(tmp_path, postgresql_url, capsys)
    settings = with_settings(intake.config.read_text(), "limits",
                             "cases_per_hour_per_sender = 1000\ncases_per_hour_per_account = 1000")
    settings = with_settings(settings, "conversations", "auto_replies_per_hour = 1000")
    intake.config.write_text(with_settings(settings, "worker", "processes = 2"))
    count = 4 * GROUP_MESSAGES
    box = mailbox.mbox(str(tmp_path / "many.mbox"), create=True)
    replies = {n: n - 1 for n in range(GROUP_MESSAGES, count, GROUP_MESSAGES)}  # reply → the message it answers
    for n in range(count):
        if n in replies:
            box.add(compose(ZACK, f"Re: Question {replies[n]}", "I forgot: it is for 2026.",
                            headers={"In-Reply-To": f"<q{replies[n]}@bayside.example>"},
                            message_id=f"<q{n}@bayside.example>"))
        else:
            box.add(compose(ZACK, f"Question {n}", QUESTION, message_id=f"<q{n}@bayside.example>"))
    box.flush()

    ran = intake.run("ingest", str(tmp_path / "many.mbox"))

    assert ran.code == 0 and "processing in 2 worker processes" in ran.err
    lines = ran.out.splitlines()[:count]
    assert [line.split(": ")[0] for line in lines] == [f"{tmp_path / 'many.mbox'}:{n + 1}" for n in range(count)]
    numbers = {c["subject"]: c["number"] for c in intake.cases()}
    assert len(numbers) == count - len(replies)  # one case per question, none for a reply
    for n, line in enumerate(lines):
        if n in replies:
            assert f": comment_added #{numbers[f'Question {replies[n]}']}:" in line, line
        else:
            assert f": case_created #{numbers[f'Question {n}']}:" in line, line
    assert len(intake.outbox()) == count - len(replies)  # an acknowledgement per case, each queued once


def _pool_workers() -> list[int]:
    """This process's children that are a process pool's workers (not multiprocessing's resource tracker)."""
    workers = []
    for proc in Path("/proc").iterdir():
        try:
            ppid = int((proc / "stat").read_text().rpartition(")")[2].split()[1])
            command = (proc / "cmdline").read_bytes().replace(b"\0", b" ")
        except (OSError, ValueError, IndexError):
            continue
        if ppid == os.getpid() and b"multiprocessing" in command and b"resource_tracker" not in command:
            workers.append(int(proc.name))
    return workers


def test_ingest_whose_worker_processes_are_killed_says_so_keeps_what_it_stored_and_the_next_run_finishes(
        tmp_path: Path, postgresql_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    # The workers are held on a lock mid-group (SHARE: they may read cases, not write one; storing
    # goes on), so the kill lands part way every time, then SIGKILLed as the kernel's OOM killer would.
    # Nothing is lost or done twice: the command says what happened and how to go on, and the same
    # command again processes what is left.
    intake = _contacts_intake(tmp_path, postgresql_url, capsys)
    settings = with_settings(intake.config.read_text(), "limits",
                             "cases_per_hour_per_sender = 1000\ncases_per_hour_per_account = 1000")
    intake.config.write_text(with_settings(settings, "worker", "processes = 2"))
    count = 4 * GROUP_MESSAGES
    box = mailbox.mbox(str(tmp_path / "killed.mbox"), create=True)
    for n in range(count):
        box.add(compose(ZACK, f"Question {n}", QUESTION, message_id=f"<k{n}@bayside.example>"))
    box.flush()
    holder = open_store(postgresql_url).engine
    killed: list[int] = []

    def waiting_on_the_lock() -> int:
        with holder.connect() as watching:  # a transaction each time: pg_stat_activity is read once in one
            return int(watching.scalar(text("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                                            " AND query LIKE 'INSERT INTO cases%'")) or 0)

    problems: list[str] = []

    def kill_the_workers_once_they_wait() -> None:
        try:
            wait_until(lambda: waiting_on_the_lock() >= 2, timeout=120, what="both workers waiting on the lock")
        except AssertionError as exc:  # killed all the same, so the command ends and the test fails, not hangs
            problems.append(str(exc))
        killed.extend(_pool_workers())
        for pid in killed:
            os.kill(pid, signal.SIGKILL)

    with holder.connect() as holding:
        holding.execute(text("LOCK TABLE cases IN SHARE MODE"))
        killer = threading.Thread(target=kill_the_workers_once_they_wait)
        killer.start()
        try:
            ran = intake.run("ingest", str(tmp_path / "killed.mbox"))
        finally:
            killer.join(130)
            holding.rollback()  # the lock goes; the killed workers' transactions were never committed
    try:
        assert not problems and len(killed) == 2 and ran.code == 1, (problems, killed, ran.code, ran.err[-2000:])
        assert "intake: error: a worker process of this command stopped" in ran.err and "Traceback" not in ran.err
        stored_first = len(intake.messages())
        assert 0 < stored_first < count and not intake.cases()  # part way: stored, none processed

        again = intake.run("ingest", str(tmp_path / "killed.mbox"))
        assert again.code == 0, again.err
        assert sum("processed now: case_created #" in line for line in again.out.splitlines()) == stored_first
        assert [m["outcome"] for m in intake.messages()] == ["case_created"] * count
        assert sorted(c["subject"] for c in intake.cases()) == sorted(f"Question {n}" for n in range(count))
        assert len(intake.outbox()) == count  # one acknowledgement each, none twice
    finally:
        holder.dispose()


def _outage(sender: str) -> bytes:
    return compose(sender, "[Report an Outage] Campus is down",
                   "Description: No user can reach Campus since 7:10.\nError Message: 503 Service Unavailable\n")


def test_two_workers_reaching_the_early_warning_at_once_draft_one_incident(
        tmp_path: Path, postgresql_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    # Outage cases from two districts are in; a third and a fourth district report at once, in two
    # workers' transactions. Each would count three districts and see no draft (the other's is not
    # committed): the second must wait for the first's commit and find its draft.
    intake = _contacts_intake(tmp_path, postgresql_url, capsys)
    extra = tmp_path / "districts.csv"
    extra.write_text((DATA / "contacts.csv").read_text().splitlines()[0] + "\n"
                     "Westbrook Unified,pat.lee@westbrook.example,Pat,Lee,IT,,,Authorized,SIS,,yes\n"
                     "Eastside Unified,max.ray@eastside.example,Max,Ray,IT,,,Authorized,SIS,,yes\n")
    assert intake.run("contacts", "import", str(extra)).code == 0
    for sender in (ZACK, "Jessie Spano <jessie.spano@valley.example>"):
        assert intake.ingest(_outage(sender)).code == 0
    config, store = load_config(intake.config), open_store(postgresql_url)
    first = _stored(store, _outage("Pat Lee <pat.lee@westbrook.example>"))
    second = _stored(store, _outage("Max Ray <max.ray@eastside.example>"))
    paused, go_on = threading.Event(), threading.Event()
    first_worker: list[threading.Thread] = []

    def hold_the_first_commit(session: Any) -> None:
        if threading.current_thread() in first_worker:
            paused.set()
            go_on.wait(timeout=30)

    def someone_waits_for_an_advisory_lock() -> bool:
        with store.engine.connect() as connection:
            return bool(connection.execute(text(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")).scalar())

    event.listen(Session, "before_commit", hold_the_first_commit)
    try:
        first_worker.append(threading.Thread(target=process_messages, args=(store, config, [first])))
        second_worker = threading.Thread(target=process_messages, args=(store, config, [second]))
        first_worker[0].start()
        wait_until(paused.is_set, timeout=30, what="the first worker to reach its commit")
        second_worker.start()
        wait_until(lambda: someone_waits_for_an_advisory_lock() or not second_worker.is_alive(), timeout=30,
                   what="the second worker to wait for the first, or to finish")
        go_on.set()
        first_worker[0].join(timeout=30)
        second_worker.join(timeout=30)
    finally:
        go_on.set()
        event.remove(Session, "before_commit", hold_the_first_commit)
        store.engine.dispose()
    assert [m["outcome"] for m in intake.messages()][-2:] == ["case_created", "case_created"]
    drafted = intake.run("notify", "list", "--json").json()
    assert len(drafted) == 1 and drafted[0]["origin"] == "early warning", drafted


# --- worker processes -----------------------------------------------------------


def _workers_started(instance: RunningIntake) -> dict[str, int]:
    """worker name → pid, from the daemon's log: the latest start of each."""
    started = re.findall(r"event=worker_started worker=(\S+) pid=(\d+)", instance.log_text())
    return {name: int(pid) for name, pid in started}


def _parent_of(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rpartition(")")[2].split()[1])


@pytest.fixture
def daemons(tmp_path: Path, postgresql_url: str) -> Iterator[Callable[..., RunningIntake]]:
    """Make `intake serve` instances on one PostgreSQL database (contacts imported); killed after the test."""
    yield from intakes_on(tmp_path, postgresql_url)


def test_processing_runs_in_worker_processes_of_their_own_and_a_dead_one_is_started_again(
        daemons: Callable[..., RunningIntake]) -> None:
    intake = daemons(extra_config="[worker]\nprocesses = 2\n").start()
    assert intake.process is not None
    workers = wait_until(lambda: (found := _workers_started(intake)) and len(found) == 2 and found,
                         timeout=STARTUP_SECONDS, what="two worker processes")
    assert sorted(workers) == ["worker-1", "worker-2"]
    assert all(_parent_of(pid) == intake.process.pid and pid != intake.process.pid for pid in workers.values())

    intake.send(case_message("Before"))
    intake.wait_until_processed(1)

    os.kill(workers["worker-1"], signal.SIGKILL)
    wait_until(lambda: "event=worker_died worker=worker-1" in intake.log_text(), timeout=STARTUP_SECONDS,
               what="the daemon to see its worker die")
    wait_until(lambda: _workers_started(intake)["worker-1"] != workers["worker-1"], timeout=STARTUP_SECONDS,
               what="worker-1 started again")
    for n in range(6):
        intake.send(case_message(f"After {n}"))
    stored = intake.wait_until_processed(7)
    assert [m.outcome for m in stored.inbound] == ["case_created"] * 7
    assert len({c.subject for c in stored.cases}) == 7
    assert intake.stop() == 0
    assert "event=worker_exited worker=worker-2 code=0" in intake.log_text()


def test_sqlite_takes_one_worker_process_and_says_why(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    intake = Intake(tmp_path, f"sqlite:///{tmp_path / 'intake.db'}", capsys)
    intake.config.write_text(intake.config.read_text() + "[worker]\nprocesses = 2\n")
    ran = intake.run("serve", "--check")
    assert ran.code == 2
    assert "[worker] processes = 2: SQLite has one writer at a time" in ran.err
    assert "several need PostgreSQL" in ran.err


# --- one IMAP mailbox, several daemons ---------------------------------------------


def _imap_table(dovecot: Any) -> str:
    return ("[[imap]]\nname = \"support\"\nhost = \"127.0.0.1\"\n"
            f"port = {dovecot.port}\nsecurity = \"none\"\nusername = \"{dovecot.user}\"\n"
            "password_env = \"INTAKE_TEST_IMAP_PASSWORD\"\npoll_seconds = 300\n")


def test_a_mailbox_is_polled_by_one_daemon_and_taken_over_when_it_dies(
        daemons: Callable[..., RunningIntake], monkeypatch: pytest.MonkeyPatch) -> None:
    with running_dovecot() as dovecot:
        monkeypatch.setenv("INTAKE_TEST_IMAP_PASSWORD", dovecot.password)
        first = daemons(imap=_imap_table(dovecot)).start()
        wait_until(lambda: "event=connected mailbox=support" in first.log_text(), timeout=STARTUP_SECONDS,
                   what="the first daemon polling the mailbox")
        second = daemons(imap=_imap_table(dovecot)).start()
        wait_until(lambda: "event=imap_standby mailbox=support" in second.log_text(), timeout=STARTUP_SECONDS,
                   what="the second daemon standing by")

        dovecot.append(case_message("While the first polls", message_id="<one@bayside.example>"))
        first.wait_until_processed(1)
        assert "event=connected mailbox=support" not in second.log_text()

        first.kill()
        wait_until(lambda: "event=imap_taken_over mailbox=support" in second.log_text(), timeout=30,
                   what="the second daemon taking the mailbox over")
        dovecot.append(case_message("After the first died", message_id="<two@bayside.example>"))
        stored = second.wait_until_processed(2)
        assert sorted(m.message_id for m in stored.inbound) == ["one@bayside.example", "two@bayside.example"]
        assert [m.outcome for m in stored.inbound] == ["case_created", "case_created"]
        wait_until(lambda: all(b"\\Seen" in flags for flags in dovecot.messages().values()) or None,
                   timeout=30, what="both messages flagged \\Seen")
        assert second.stop() == 0


# --- three daemons, one killed ------------------------------------------------------

SMTP_MESSAGES = 1_000
IMAP_MESSAGES = 60  # half before the kill, half after
KILL_AFTER = 300  # SMTP messages accepted before the first daemon (which polls the mailbox) is killed
SENDERS = 8


def _send_spread(daemons: list[RunningIntake], messages: list[bytes], alive: Callable[[], list[RunningIntake]],
                 accepted: list[str]) -> None:
    """Send each message to a daemon in turn; one that fails goes to the next living daemon, as an MTA retries."""
    lock = threading.Lock()
    work = list(enumerate(messages))

    def sender(worker: int) -> None:
        while True:
            with lock:
                if not work:
                    return
                number, raw = work.pop(0)
            for attempt in range(30):
                living = alive()
                target = living[(number + attempt) % len(living)]
                try:
                    with smtplib.SMTP("127.0.0.1", target.port, timeout=30) as client:
                        client.sendmail("zack.morris@bayside.example", [SUPPORT], raw)
                except (OSError, smtplib.SMTPException):
                    continue  # refused, 4xx, or the daemon died under us: try another
                with lock:
                    accepted.append(f"m{number}@load.example")
                break
            else:
                raise AssertionError(f"message {number} was refused by every daemon 30 times")

    threads = [threading.Thread(target=sender, args=(n,)) for n in range(SENDERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def test_three_daemons_one_killed_part_way_every_message_one_outcome_one_answer_one_delivery(
        daemons: Callable[..., RunningIntake], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shared_sink = tmp_path / "outgoing"
    settings = ("[limits]\ncases_per_hour_per_sender = 1000000\ncases_per_hour_per_account = 1000000\n"
                "[worker]\nprocesses = 2\n")
    with running_dovecot() as dovecot:
        monkeypatch.setenv("INTAKE_TEST_IMAP_PASSWORD", dovecot.password)
        group = [daemons(imap=_imap_table(dovecot), extra_config=settings, maildir=shared_sink) for _ in range(3)]
        for instance in group:  # what the killed daemon was delivering is delivered by another 20 s later
            instance.config.write_text(with_settings(instance.config.read_text(), "outgoing", "claim_seconds = 20"))
        group[0].start()
        wait_until(lambda: "event=connected mailbox=support" in group[0].log_text(), timeout=STARTUP_SECONDS,
                   what="the first daemon polling the mailbox")
        for instance in group[1:]:
            instance.start()
        killed: list[RunningIntake] = []

        def alive() -> list[RunningIntake]:
            return [d for d in group if d not in killed]

        for n in range(IMAP_MESSAGES // 2):
            dovecot.append(case_message(f"By IMAP {n}", message_id=f"<i{n}@load.example>"))
        messages = [case_message(f"Load {n}", message_id=f"<m{n}@load.example>") for n in range(SMTP_MESSAGES)]
        accepted: list[str] = []
        sending = threading.Thread(target=_send_spread, args=(group, messages, alive, accepted))
        sending.start()
        wait_until(lambda: len(accepted) >= KILL_AFTER, timeout=300, what=f"{KILL_AFTER} messages accepted")
        killed.append(group[0])
        group[0].kill()  # the daemon, its workers, its delivery and its IMAP poller, at once
        for n in range(IMAP_MESSAGES // 2, IMAP_MESSAGES):
            dovecot.append(case_message(f"By IMAP {n}", message_id=f"<i{n}@load.example>"))
        sending.join()

        total = SMTP_MESSAGES + IMAP_MESSAGES
        survivor = group[1]
        stored = survivor.wait_until_processed(total, timeout=600)
        # Every message stored once, and each has exactly one outcome: a case.
        assert len(stored.inbound) == total
        assert sorted(m.message_id for m in stored.inbound) == sorted(
            [f"m{n}@load.example" for n in range(SMTP_MESSAGES)] + [f"i{n}@load.example" for n in range(IMAP_MESSAGES)])
        assert {m.outcome for m in stored.inbound} == {"case_created"}
        assert len(stored.cases) == total and len({c.number for c in stored.cases}) == total
        assert sorted(m.case_number for m in stored.inbound) == sorted(c.number for c in stored.cases)
        # Every acknowledgement queued exactly once, for its own message.
        acknowledgements = Counter(m.inbound_message_id for m in stored.outbox if m.kind == "acknowledgement")
        assert len(acknowledgements) == total and set(acknowledgements.values()) == {1}

        def all_delivered() -> list[Path] | None:
            files = sorted((shared_sink / "new").iterdir()) if (shared_sink / "new").is_dir() else []
            sent = survivor.stored().outbox
            return files if len(files) >= total and all(m.status == "sent" for m in sent) else None

        files = wait_until(all_delivered, timeout=300, what="every acknowledgement delivered", interval=0.5)
        delivered = Counter(email.message_from_bytes(f.read_bytes())["Message-ID"] for f in files)
        assert len(files) == len(delivered) == total  # the Maildir sink holds each one once
        assert set(delivered) == {f"<{m.message_id}>" for m in stored.outbox}
        assert all(d.stop() == 0 for d in alive())
        assert all(b"\\Seen" in flags for flags in dovecot.messages().values())
