"""Opening the database and the first, durable step of the flow: storing raw mail.

SQLite is the embedded default and PostgreSQL the multi-daemon deployment; the
same code runs on both. On SQLite every commit is made durable
(`synchronous=FULL`) and a locked database waits a bounded time rather than
hanging, so the mail edge can answer "try later" instead of losing a message.

The schema is the migrations' (`intake.store.migrate`): opening a store checks
the database's revision first, and brings an embedded SQLite database up to
date; a PostgreSQL one behind the code is refused until `intake db upgrade`.
"""
from __future__ import annotations

import hashlib
import io
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, create_engine, event, func, insert, inspect, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapper, Session, sessionmaker
from sqlalchemy.orm.attributes import set_committed_value

from intake.store import migrate
from intake.store.models import Attachment, InboundMessage, InboundRaw, utcnow
from intake.store.urls import sqlite_file
from parsers.message import bare_message_id

SQLITE_BUSY_TIMEOUT_MS = 5000


@dataclass(frozen=True)
class Store:
    engine: Engine
    sessions: sessionmaker[Session]

    def session(self) -> Session:
        return self.sessions()


def open_store(url: str, *, create: bool = True) -> Store:
    """Connect and check the schema's revision (migrate.SchemaError when this code cannot use it).

    With `create` an embedded SQLite database is created or upgraded; without,
    nothing is changed (for callers that only look: a dry run, `serve --check`).
    """
    engine = engine_for(url)
    try:
        migrate.check(engine, change=create)
    except BaseException:
        engine.dispose()
        raise
    return Store(engine, sessionmaker(engine, expire_on_commit=False))


def engine_for(url: str) -> Engine:
    """An engine with intake's connection settings; a SQLite file's folder is made when missing."""
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    file = sqlite_file(url)
    if file is not None:
        file.parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args=_connect_args(url))
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _connect_args(url: str) -> dict[str, Any]:
    if make_url(url).get_backend_name() == "sqlite":
        # No cache of prepared statements: a cached statement keeps its last parameters bound,
        # SQLite's own copy of them, so every INSERT of a message or file would keep its largest
        # raw bytes alive for as long as the connection lives. Preparing again costs microseconds.
        return {"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "cached_statements": 0}
    return {}


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


# --- large binary values on SQLite ---------------------------------------------------
#
# Bound as a parameter, a value is copied twice by SQLite (its copy of the parameter, then the
# record it builds): inserting a 34 MB message cost 68 MB. So on SQLite a message's bytes and an
# attachment's content are inserted as a zeroblob of their length and written into it through a
# blob handle, a piece at a time, in the same transaction. PostgreSQL takes them as parameters.

BLOB_PIECE = 1024 * 1024  # bytes written at a time


def _write_in_pieces(connection: Connection, table: str, column: str, rowid: int, content: bytes) -> None:
    driver: Any = connection.connection.dbapi_connection
    whole = memoryview(content)
    with driver.blobopen(table, column, rowid) as blob:
        for start in range(0, len(content), BLOB_PIECE):
            blob.write(whole[start:start + BLOB_PIECE])


def _write_later(column: str) -> Callable[[Mapper[Any], Connection, Any], None]:
    """A `before_insert` hook: on SQLite the row is inserted with a zeroblob where `column`'s value goes."""
    def before_insert(_mapper: Mapper[Any], connection: Connection, target: Any) -> None:
        if connection.dialect.name == "sqlite":
            content = getattr(target, column)
            inspect(target).info[column] = content
            setattr(target, column, func.zeroblob(len(content)))
    return before_insert


def _write_now(column: str) -> Callable[[Mapper[Any], Connection, Any], None]:
    """The `after_insert` hook: the value set aside by `_write_later` written into its zeroblob."""
    def after_insert(mapper: Mapper[Any], connection: Connection, target: Any) -> None:
        content = inspect(target).info.pop(column, None)
        if content is not None:
            rowid = mapper.primary_key_from_instance(target)[0]
            _write_in_pieces(connection, mapper.local_table.name, column, rowid, content)  # type: ignore[attr-defined]
            set_committed_value(target, column, content)  # as stored: nothing to load again
    return after_insert


for _model, _column in ((InboundRaw, "raw"), (Attachment, "content")):
    event.listen(_model, "before_insert", _write_later(_column))
    event.listen(_model, "after_insert", _write_now(_column))


def load_raw(session: Session, inbound_id: int) -> bytes:
    """The stored bytes of a message, in the session's transaction, with one copy of them in memory.

    A driver's plain fetch holds several: SQLite's value and Python's bytes; on
    PostgreSQL libpq's input buffer (grown by doubling), its result and Python's
    bytes (a 34 MB message cost 130 MB). So SQLite's bytes are read through a
    blob handle straight into the bytes returned, and PostgreSQL's a slice at a
    time; a message smaller than one slice takes one query, as before.
    """
    connection = session.connection()
    driver: Any = connection.connection.dbapi_connection
    if connection.dialect.name == "sqlite":
        try:
            with driver.blobopen("inbound_raw", "raw", inbound_id, readonly=True) as blob:
                return bytes(blob.read())
        except sqlite3.OperationalError as exc:
            if str(exc).startswith("no such rowid"):
                raise LookupError(f"no stored message {inbound_id}") from exc
            raise
    return _slices_read(driver, inbound_id)


RAW_SLICE = 1024 * 1024  # bytes of a stored message fetched at a time from PostgreSQL


def _slices_read(driver: Any, inbound_id: int) -> bytes:
    with driver.cursor(binary=True) as cursor:  # binary: bytea's text form is hex, twice the size
        cursor.execute("SELECT substr(raw, 1, %s), length(raw) FROM inbound_raw WHERE inbound_message_id = %s",
                       (RAW_SLICE, inbound_id))
        found = cursor.fetchone()
        if found is None:
            raise LookupError(f"no stored message {inbound_id}")
        first, size = found
        if size <= RAW_SLICE:
            return bytes(first)
        whole = io.BytesIO()
        whole.write(first)
        for start in range(RAW_SLICE + 1, size + 1, RAW_SLICE):
            cursor.execute("SELECT substr(raw, %s, %s) FROM inbound_raw WHERE inbound_message_id = %s",
                           (start, RAW_SLICE, inbound_id))
            whole.write(cursor.fetchone()[0])
    return whole.getvalue()  # the buffer itself, not a copy of it


def dedupe_key(raw: bytes, message_id: str | None) -> str:
    """The identity of a message across redeliveries.

    The Message-ID when there is one; broken clients that reuse a Message-ID
    for different mail are told apart by also hashing the body when the IDs
    collide (see `store_raw`). Without a Message-ID, the hash of the bytes.
    """
    if message_id:
        return "mid:" + bare_message_id(message_id).lower()
    return "sha256:" + hashlib.sha256(raw).hexdigest()


@dataclass(frozen=True)
class Stored:
    id: int
    duplicate: bool  # True when this message was stored before; `id` is the earlier row


def store_raw(store: Store, raw: bytes, *, message_id: str | None, sender: str | None, subject: str,
              source: str, envelope_sender: str | None = None) -> Stored:
    """Commit the raw bytes, or find the earlier copy of the same message."""
    digest = hashlib.sha256(raw).hexdigest()
    key = dedupe_key(raw, message_id)
    with store.session() as session:
        earlier = session.scalars(select(InboundMessage).where(InboundMessage.dedupe_key == key)).first()
        if earlier is not None:
            if earlier.sha256 == digest or not message_id or _same_message(earlier.raw, raw):
                return Stored(earlier.id, duplicate=True)
            # A reused Message-ID on different content: a different message.
            key = "sha256:" + digest
            again = session.scalars(select(InboundMessage).where(InboundMessage.dedupe_key == key)).first()
            if again is not None:
                return Stored(again.id, duplicate=True)
        row = InboundMessage(dedupe_key=key, message_id=message_id, sender=sender, subject=subject[:1000],
                             source=source[:200], envelope_sender=envelope_sender, size=len(raw),
                             sha256=digest, received=utcnow(), as_received=InboundRaw(raw=raw))
        session.add(row)
        try:
            session.commit()
        except IntegrityError:
            # Another process stored the same message between our look-up and insert.
            session.rollback()
            existing = session.scalars(select(InboundMessage).where(InboundMessage.dedupe_key == key)).one()
            return Stored(existing.id, duplicate=True)
        return Stored(row.id, duplicate=False)


@dataclass(frozen=True)
class Arrival:
    """One message to store, with what it is filed under (read at the edge)."""

    raw: bytes
    message_id: str | None
    sender: str | None
    subject: str
    source: str
    envelope_sender: str | None = None


def store_raw_many(store: Store, arrivals: Sequence[Arrival]) -> list[Stored]:
    """Commit many messages in one transaction (group commit), each as `store_raw` would.

    One look-up of the dedupe keys, one multi-row insert, one commit: the cost
    of durability is shared by all the messages that arrived together, and
    SQLAlchemy Core keeps the cost per message small (this runs on the SMTP
    edge's own interpreter). A message twice in `arrivals` is a duplicate of
    its first copy. The rare groups that need `store_raw`'s care (a copy
    already stored, a Message-ID reused on different content, another
    process storing one of them meanwhile) are stored one by one instead.
    """
    def one_by_one() -> list[Stored]:
        return [store_raw(store, a.raw, message_id=a.message_id, sender=a.sender, subject=a.subject,
                          source=a.source, envelope_sender=a.envelope_sender) for a in arrivals]

    keys = [dedupe_key(a.raw, a.message_id) for a in arrivals]
    firsts: dict[str, int] = {}  # dedupe key → index of its first copy in `rows`
    rows: list[dict[str, Any]] = []
    raws: list[bytes] = []  # of each row
    order: list[tuple[int, bool]] = []  # for each arrival: its row, and whether it is a copy
    now = utcnow()
    for arrival, key in zip(arrivals, keys, strict=True):
        digest = hashlib.sha256(arrival.raw).hexdigest()
        first = firsts.get(key)
        if first is not None:
            earlier = rows[first]
            if earlier["sha256"] != digest and arrival.message_id and not _same_message(raws[first], arrival.raw):
                return one_by_one()  # a Message-ID reused on different content, within one group
            order.append((first, True))
            continue
        firsts[key] = len(rows)
        order.append((len(rows), False))
        rows.append({"dedupe_key": key, "message_id": arrival.message_id, "sender": arrival.sender,
                     "subject": arrival.subject[:1000], "source": arrival.source[:200],
                     "envelope_sender": arrival.envelope_sender, "size": len(arrival.raw),
                     "sha256": digest, "received": now})
        raws.append(arrival.raw)
    try:
        with store.engine.begin() as connection:
            if connection.execute(select(InboundMessage.id)
                                  .where(InboundMessage.dedupe_key.in_(list(firsts))).limit(1)).first():
                raise _StoredBefore
            ids = list(connection.execute(insert(InboundMessage).returning(InboundMessage.id,
                                                                           sort_by_parameter_order=True),
                                          rows).scalars())
            _insert_raw(connection, list(zip(ids, raws, strict=True)))
    except (_StoredBefore, IntegrityError):  # a copy stored before, or by another process meanwhile
        return one_by_one()
    return [Stored(ids[index], duplicate=copy) for index, copy in order]


def _insert_raw(connection: Connection, messages: Sequence[tuple[int, bytes]]) -> None:
    """The raw bytes of just inserted messages, by their ids, in the same transaction (on SQLite in pieces)."""
    if connection.dialect.name != "sqlite":
        connection.execute(insert(InboundRaw), [{"inbound_message_id": inbound_id, "raw": raw}
                                                for inbound_id, raw in messages])
        return
    connection.execute(insert(InboundRaw).values(raw=func.zeroblob(bindparam("size"))),
                       [{"inbound_message_id": inbound_id, "size": len(raw)} for inbound_id, raw in messages])
    for inbound_id, raw in messages:
        _write_in_pieces(connection, "inbound_raw", "raw", inbound_id, raw)


class _StoredBefore(Exception):
    """A message of the group was stored before: the group is stored one by one."""


def _same_message(earlier: bytes, raw: bytes) -> bool:
    """Two copies of one message differ only in trace headers added on the way."""
    return _body(earlier) == _body(raw)


def _body(raw: bytes) -> bytes:
    for separator in (b"\r\n\r\n", b"\n\n"):
        head, found, body = raw.partition(separator)
        if found:
            return body.replace(b"\r\n", b"\n").strip()
    return raw.strip()
