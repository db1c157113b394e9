"""The SMTP edge when things go wrong: 250 only after the commit, 451 otherwise, never a message lost or doubled.

The store is made to fail for real, by another connection holding the lock
the daemon needs for longer than the daemon waits for it: on SQLite an
exclusive write transaction (`BEGIN EXCLUSIVE`) outlasting the 5 s busy
timeout; on PostgreSQL `LOCK TABLE inbound_messages IN ACCESS EXCLUSIVE MODE`
outlasting the daemon's `lock_timeout` (which `intake serve` sets, 5 s, on its
edge connections). Either way `store_raw` raises inside DATA and the client
must get 451, then succeed on its retry once the lock is gone.
"""
from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Callable, Iterator

from sqlalchemy import create_engine, text

from conftest import SUPPORT
from smtp_helpers import ZACK_ADDRESS, RunningIntake, case_message, dot_stuffed, make_intake, open_session, wait_until

__all__ = ["make_intake"]

Make = Callable[..., RunningIntake]
TRY_AGAIN = (451, b"4.3.0 Temporary failure, please try again later")


@contextlib.contextmanager
def store_locked(intake: RunningIntake) -> Iterator[None]:
    """Hold, from another connection, the lock that storing a message needs."""
    url = intake.database_url
    if url.startswith("sqlite:///"):
        writer = sqlite3.connect(url[len("sqlite:///"):], timeout=10, isolation_level=None)
        writer.execute("BEGIN EXCLUSIVE")
        try:
            yield
        finally:
            writer.rollback()
            writer.close()
        return
    engine = create_engine(url)
    try:
        with engine.connect() as holder, holder.begin():
            holder.execute(text("LOCK TABLE inbound_messages IN ACCESS EXCLUSIVE MODE"))
            yield
    finally:
        engine.dispose()


def store_lock_held(intake: RunningIntake) -> bool:
    """Seen from a third connection: is the lock that storing needs held right now?"""
    url = intake.database_url
    if url.startswith("sqlite:///"):
        probe = sqlite3.connect(url[len("sqlite:///"):], timeout=0, isolation_level=None)
        try:
            probe.execute("BEGIN IMMEDIATE")  # a write lock, as store_raw's INSERT takes
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc):
                return True
            raise
        finally:
            probe.close()  # rolls back the probe's own transaction when it got one
        return False
    with intake.engine.connect() as probe:
        return bool(probe.scalar(text(
            "SELECT count(*) FROM pg_locks WHERE relation = 'inbound_messages'::regclass"
            " AND mode = 'AccessExclusiveLock' AND granted")))


def data_answer(intake: RunningIntake, raw: bytes) -> tuple[int, bytes]:
    with intake.smtp() as client:
        client.ehlo()
        assert client.mail(ZACK_ADDRESS)[0] == 250 and client.rcpt(SUPPORT)[0] == 250
        return client.data(raw)


def test_a_store_that_fails_inside_data_answers_451_and_the_retry_is_stored_once(make_intake: Make) -> None:
    intake = make_intake().start()
    raw = case_message(message_id="<locked-out@bayside.example>")
    with store_locked(intake):
        assert data_answer(intake, raw) == TRY_AGAIN
    assert data_answer(intake, raw)[0] == 250
    stored = intake.wait_until_processed(1)
    assert stored.message_ids() == ["locked-out@bayside.example"] and len(stored.cases) == 1
    assert "event=tempfail" in intake.log_text()


def test_a_burst_while_the_store_is_locked_gets_451s_and_every_250_is_stored(make_intake: Make) -> None:
    intake = make_intake().start()
    ids = [[f"<burst-{t}-{n}@bayside.example>" for n in range(8)] for t in range(3)]
    answers: list[tuple[str, int]] = []  # (Message-ID, reply code) in the order received
    errors: list[BaseException] = []
    lock = threading.Lock()
    # The rest of the burst goes out only once the store is locked: sent any
    # earlier, all of it can be stored before the lock is taken and no 451 is
    # ever seen (as happened on a loaded machine).
    store_is_locked = threading.Event()

    def send_until_accepted(message_id: str) -> None:
        while True:  # as an MTA would: retry a 451 until it is accepted
            code, _ = data_answer(intake, case_message(message_id=message_id))
            with lock:
                answers.append((message_id, code))
            if code == 250:
                return
            assert code == 451

    def sender(message_ids: list[str]) -> None:
        try:
            send_until_accepted(message_ids[0])
            assert store_is_locked.wait(timeout=60), "the store was never locked"
            for message_id in message_ids[1:]:
                send_until_accepted(message_id)
        except BaseException as exc:  # reported by the test, not lost with the thread
            errors.append(exc)

    threads = [threading.Thread(target=sender, args=(batch,), daemon=True) for batch in ids]
    for thread in threads:
        thread.start()
    wait_until(lambda: len(answers) >= 3, timeout=30, what="the first messages to be accepted")
    with store_locked(intake):
        wait_until(lambda: store_lock_held(intake), timeout=10, what="the store lock to be held")
        store_is_locked.set()
        wait_until(lambda: sum(code == 451 for _, code in answers) >= 2, timeout=30,
                   what="451 answers while the database is locked")
    for thread in threads:
        thread.join(timeout=60)
        assert not thread.is_alive()
    assert not errors, errors
    every_id = {m.strip("<>") for batch in ids for m in batch}
    stored = intake.wait_until_processed(len(every_id))
    assert sorted(stored.message_ids()) == sorted(every_id)  # each once, none lost
    accepted = {m.strip("<>") for m, code in answers if code == 250}
    assert accepted == every_id
    # Each message has its one outcome and made one case: a worker locked out
    # too leaves the message for its next pass rather than marking it failed.
    made_a_case = [m.case_number for m in stored.inbound if m.outcome == "case_created" and m.case_number]
    assert sorted(made_a_case) == sorted(c.number for c in stored.cases)
    assert {m.outcome for m in stored.inbound} == {"case_created"}


def test_a_client_that_drops_the_connection_mid_data_leaves_nothing_stored(make_intake: Make) -> None:
    intake = make_intake().start()
    payload = dot_stuffed(case_message(message_id="<dropped@bayside.example>"))
    sock = open_session(intake.port)
    sock.sendall(payload[: len(payload) // 2])
    sock.close()
    # A complete message after it: once that one is processed, the dropped one
    # had every chance to be stored and must not have been.
    intake.send(case_message(message_id="<after-drop@bayside.example>"))
    stored = intake.wait_until_processed(1)
    assert stored.message_ids() == ["after-drop@bayside.example"]


def test_a_client_that_hangs_up_after_the_final_dot_and_resends_gets_one_case(make_intake: Make) -> None:
    intake = make_intake().start()
    raw = case_message(message_id="<impatient@bayside.example>")
    sock = open_session(intake.port)
    sock.sendall(dot_stuffed(raw) + b".\r\n")
    sock.close()  # before reading the answer: the client cannot know whether it was accepted
    with intake.smtp() as client:
        assert client.sendmail(ZACK_ADDRESS, [SUPPORT], raw) == {}
    stored = intake.wait_until_processed(1)
    assert stored.message_ids() == ["impatient@bayside.example"]
    assert len(stored.cases) == 1 and [o.kind for o in stored.outbox] == ["acknowledgement"]
