"""On SQLite the daemon's writers take turns, and the next one is told the moment a turn ends.

SQLite has one writer at a time. A connection that finds the database locked
sleeps and tries again, longer each time (1, 2, 5, 10 ms...: its busy
handler), so the mail edge's commit that arrives while a worker writes often
waits twice as long as the worker held the lock, and every session waiting
for its 250 waits with it. So the two writers that share the database all
the time, the SMTP/LMTP edge's group commit and the worker, first take a turn:
an exclusive `flock` on a file beside the database (`intake.db.turn`), tried
every `poll` seconds, the edge's more often than the worker's.

A turn only orders the daemon's writers: SQLite's own locking still decides,
and a writer that takes no turn (the IMAP poller, the outbox, the schedule,
the commands; `intake ingest` takes one to process, as the worker does) waits
for the lock as before. A turn not had within `TURN_WAIT_SECONDS` (its holder
hangs) is gone without: the write then waits for SQLite's lock, bounded by its
busy timeout, as it would without turns (so at worst twice that: seconds). A
turn file that cannot be opened is gone without too. The kernel lets go of
the turn of a process that dies. PostgreSQL has row locks and needs none of
this.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import Engine

from intake.store.database import SQLITE_BUSY_TIMEOUT_MS
from intake.store.urls import sqlite_file

TURN_WAIT_SECONDS = SQLITE_BUSY_TIMEOUT_MS / 1000  # as long as SQLite's own wait for its lock
EDGE_POLL_SECONDS = 0.0002  # a client is waiting for its 250
WORKER_POLL_SECONDS = 0.001  # a stored message can wait a moment for its case


def turn_file(engine: Engine) -> Path | None:
    """The file whose lock is the turn, for an SQLite database on disk; None otherwise."""
    database = sqlite_file(engine.url.render_as_string(hide_password=False))
    return None if database is None else database.with_name(database.name + ".turn")


@contextlib.contextmanager
def turn(engine: Engine, *, poll: float) -> Iterator[None]:
    """Hold the writers' turn for the duration (at once on PostgreSQL or an in-memory database)."""
    descriptor = _opened(turn_file(engine))
    if descriptor is None:
        yield
        return
    try:
        _take(descriptor, poll)
        yield
    finally:
        os.close(descriptor)  # lets go of the lock too


def _opened(path: Path | None) -> int | None:
    """A descriptor of the turn file of its own: a flock belongs to an open file, so two threads of
    one process sharing a descriptor would both "hold" it. None when there is no file to open."""
    if path is None:
        return None
    try:  # made with the database's permissions (SQLite makes its -wal file so), for a command
        # run by another user of the database's group
        mode = path.with_name(path.name.removesuffix(".turn")).stat().st_mode & 0o666
    except OSError:
        mode = 0o600
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, mode)
    except OSError:  # not ours to open: a turn orders writers, it never keeps one from writing
        return None


def _take(descriptor: int, poll: float) -> bool:
    deadline = time.monotonic() + TURN_WAIT_SECONDS
    while True:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() > deadline:
                return False  # its holder hangs: go on without, SQLite's own lock still decides
            _sleep(poll)


_sleep = time.sleep  # the pause between tries (the tests see a writer wait through it)
