"""Who does a job when several daemons share one PostgreSQL: a session advisory lock per job.

A `HeldLock` is taken on a connection of its own, kept for as long as the
job runs. PostgreSQL drops the lock with the connection, so when the daemon
holding it dies (or loses the database) another one takes it over on its next
try. On SQLite, one machine's database, every lock is held at once.

These locks order work, they do not guard correctness: an IMAP message fetched
twice in the moment a lock changes hands is still stored once. One decision
does need one writer at a time (an early warning drafts one incident):
`lock_for_transaction` holds a transaction advisory lock for it.
"""
from __future__ import annotations

import logging

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

log = logging.getLogger("intake.store.locks")


class HeldLock:
    """A named PostgreSQL advisory lock held by this process, or not yet."""

    def __init__(self, engine: Engine, name: str) -> None:
        self.engine = engine
        self.name = name
        self._connection: Connection | None = None

    @property
    def shared(self) -> bool:
        """Whether other daemons can take this lock at all (PostgreSQL)."""
        return self.engine.dialect.name == "postgresql"

    def take(self) -> bool:
        """Hold the lock: True when this process holds it now (it may have for a while)."""
        if not self.shared:
            return True
        if self._connection is not None:
            if self._alive():
                return True
            self.release()  # the connection went away, and the lock with it
        connection = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        try:
            taken = bool(connection.execute(text("SELECT pg_try_advisory_lock(hashtextextended(:name, 0))"),
                                            {"name": self._key}).scalar())
        except BaseException:
            connection.close()
            raise
        if not taken:
            connection.close()
            return False
        self._connection = connection
        return True

    def release(self) -> None:
        connection, self._connection = self._connection, None
        if connection is None:
            return
        try:
            connection.execute(text("SELECT pg_advisory_unlock(hashtextextended(:name, 0))"), {"name": self._key})
        except SQLAlchemyError:  # the connection is gone; so is the lock
            pass
        finally:
            connection.close()

    @property
    def _key(self) -> str:
        return f"intake {self.name}"

    def _alive(self) -> bool:
        assert self._connection is not None
        try:
            self._connection.execute(text("SELECT 1"))
        except SQLAlchemyError:
            return False
        return True


def lock_for_transaction(session: Session, name: str) -> None:
    """Wait for, then hold until the commit, PostgreSQL's transaction advisory lock `name` (SQLite: a no-op).

    For a decision that reads, then writes what the next reader must see
    (one draft incident per early warning): two workers' transactions would
    each read before the other's write; with the lock taken first, the second
    reads after the first commits. SQLite has one writer already.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:name, 0))"), {"name": name})
