"""On SQLite the daemon's two writers, the mail edge's group commit and the worker, take turns.

A writer that finds the turn taken waits for it (polling a flock every fraction
of a millisecond) instead of for SQLite's busy handler, which sleeps longer each
try; it goes the moment the turn is let go, and without it when the holder
hangs. The tests hold the turn themselves, as a worker mid-write would, and see
the other writer wait for it: its first poll is the sign it is waiting.
"""
from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import select

from conftest import DATA, Intake, compose
from intake.act.worker import process_stored
from intake.config import load_config
from intake.mailin.accept import Stored, accept
from intake.mailin.group_commit import GroupCommit
from intake.store import turns
from intake.store.database import Store, engine_for, open_store
from intake.store.models import InboundMessage
from smtp_helpers import QUESTION, wait_until

ZACK = "Zack Morris <zack.morris@bayside.example>"
DEADLINE = 10.0


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[Store]:
    store = open_store(f"sqlite:///{tmp_path / 'intake.db'}")
    try:
        yield store
    finally:
        store.engine.dispose()


@contextmanager
def _held_turn(store: Store) -> Iterator[None]:
    """The turn, held by this thread (its own descriptor: the writer's flock is refused)."""
    with turns.turn(store.engine, poll=turns.WORKER_POLL_SECONDS):
        yield


def _first_poll(monkeypatch: pytest.MonkeyPatch) -> threading.Event:
    """Set when a writer first finds the turn taken and waits for it."""
    waiting = threading.Event()
    sleep = turns._sleep

    def polling(seconds: float) -> None:
        waiting.set()
        sleep(seconds)
    monkeypatch.setattr(turns, "_sleep", polling)
    return waiting


def _in_thread(work: Callable[[], object]) -> tuple[threading.Thread, list[object]]:
    result: list[object] = []
    thread = threading.Thread(target=lambda: result.append(work()), daemon=True)
    thread.start()
    return thread, result


def _edge_stores(store: Store, raw: bytes) -> object:
    async def one() -> object:
        return await GroupCommit(store).store_message(raw, "smtp:test", "zack.morris@bayside.example")
    return asyncio.run(one())


def _stored_subjects(store: Store) -> list[str]:
    with store.session() as session:
        return list(session.scalars(select(InboundMessage.subject).order_by(InboundMessage.id)))


def test_the_edges_commit_waits_for_the_turn_and_goes_the_moment_it_is_let_go(
        sqlite_store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    waiting = _first_poll(monkeypatch)
    raw = compose(ZACK, "Households", QUESTION, message_id="<turn@bayside.example>")
    with _held_turn(sqlite_store):
        thread, result = _in_thread(lambda: _edge_stores(sqlite_store, raw))
        assert waiting.wait(DEADLINE), "the edge never found the turn taken"
        assert _stored_subjects(sqlite_store) == []  # nothing committed while the turn is held
    thread.join(DEADLINE)
    assert not thread.is_alive() and _stored_subjects(sqlite_store) == ["Households"]
    assert isinstance(result[0], Stored) and not result[0].duplicate


def test_a_turn_its_holder_keeps_too_long_is_gone_without(
        sqlite_store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    # A holder that hangs (stopped, say) must not keep the edge from answering: after the wait it
    # writes anyway, and SQLite's own lock (free here) decides.
    monkeypatch.setattr(turns, "TURN_WAIT_SECONDS", 0.2)
    raw = compose(ZACK, "Transcripts", QUESTION, message_id="<late@bayside.example>")
    with _held_turn(sqlite_store):
        thread, _ = _in_thread(lambda: _edge_stores(sqlite_store, raw))
        wait_until(lambda: _stored_subjects(sqlite_store), timeout=DEADLINE, what="the message stored without the turn")
    thread.join(DEADLINE)
    assert _stored_subjects(sqlite_store) == ["Transcripts"]


def test_the_worker_takes_the_turn_before_it_writes_an_outcome(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{tmp_path / 'intake.db'}"
    intake = Intake(tmp_path, url, capsys)
    assert intake.run("contacts", "import", str(DATA / "contacts.csv")).code == 0
    config, store = load_config(intake.config), open_store(url)
    try:
        inbound = accept(store, compose(ZACK, "Schedules", QUESTION, message_id="<w@bayside.example>"), "smtp:test")

        def outcome() -> str | None:
            with store.session() as session:
                return session.scalar(select(InboundMessage.outcome).where(InboundMessage.id == inbound.id))
        waiting = _first_poll(monkeypatch)
        with _held_turn(store):
            thread, processed = _in_thread(lambda: process_stored(store, config))
            assert waiting.wait(DEADLINE), "the worker never found the turn taken"
            assert outcome() is None  # parsed, perhaps, but nothing written while the turn is held
        thread.join(DEADLINE)
        assert processed == [1] and outcome() == "case_created"
    finally:
        store.engine.dispose()


def test_postgresql_has_row_locks_and_no_turns(postgresql_url: str) -> None:
    engine = engine_for(postgresql_url)
    try:
        assert turns.turn_file(engine) is None
        with turns.turn(engine, poll=turns.EDGE_POLL_SECONDS), turns.turn(engine, poll=1.0):
            pass  # both at once: nothing is held
    finally:
        engine.dispose()


def test_the_turn_is_a_file_beside_the_database(sqlite_store: Store) -> None:
    database = Path(str(sqlite_store.engine.url.database))
    assert turns.turn_file(sqlite_store.engine) == database.with_name("intake.db.turn")


def test_a_turn_file_that_cannot_be_opened_never_keeps_the_edge_from_storing(sqlite_store: Store) -> None:
    # A command run by another user, say, who may write the database but not make the turn file.
    turn_path = turns.turn_file(sqlite_store.engine)
    assert turn_path is not None
    turn_path.mkdir()  # os.open of a folder for writing fails, as a file it may not open would
    stored = _edge_stores(sqlite_store, compose(ZACK, "Schedules", QUESTION, message_id="<dir@bayside.example>"))
    assert isinstance(stored, Stored) and not stored.duplicate
    assert _stored_subjects(sqlite_store) == ["Schedules"]
