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

import contextlib
import hashlib
import io
import sqlite3
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, bindparam, create_engine, event, func, insert, inspect, select, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Mapper, Session, make_transient_to_detached, sessionmaker
from sqlalchemy.orm.attributes import set_committed_value

from intake.store import migrate
from intake.store.models import Attachment, InboundMessage, utcnow
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


# --- large binary values, never copied whole ----------------------------------------
#
# Bound as a parameter, a value is copied twice by SQLite (its copy of the parameter, then the
# record it builds): inserting a 34 MB message cost 68 MB. So on SQLite a message's bytes larger
# than one piece, and an attachment's content, are inserted as a zeroblob of their length and
# written into it through a blob handle, a piece at a time, in the same transaction. PostgreSQL
# gets a message's bytes by COPY (`_insert_raw`) and an attachment's as a parameter (one copy, in
# libpq's buffer).

BLOB_PIECE = 1024 * 1024  # bytes written at a time


@contextlib.contextmanager
def _driver(connection: Connection, doing: str) -> Iterator[Any]:
    """The connection's DB-API connection, for what SQLAlchemy cannot say (blob handles, COPY).

    Its errors are raised as SQLAlchemy's, as those of any statement are: the
    edges answer "try later" for an OperationalError, whoever made it.
    """
    dbapi = connection.dialect.loaded_dbapi
    try:
        yield connection.connection.dbapi_connection
    except dbapi.Error as exc:
        raise DBAPIError.instance(doing, None, exc, dbapi.Error, dialect=connection.dialect) from exc


def _write_in_pieces(connection: Connection, table: str, column: str, rowid: int, content: bytes) -> None:
    whole = memoryview(content)
    with _driver(connection, f"writing {table}.{column} {rowid}") as driver, \
            driver.blobopen(table, column, rowid) as blob:
        for start in range(0, len(content), BLOB_PIECE):
            blob.write(whole[start:start + BLOB_PIECE])


@event.listens_for(Attachment, "before_insert")
def _insert_content_later(_mapper: Mapper[Any], connection: Connection, attachment: Attachment) -> None:
    """On SQLite a file's row is inserted with a zeroblob for its content, wherever the ORM stores a file."""
    if connection.dialect.name == "sqlite":
        inspect(attachment).info["content"] = attachment.content
        attachment.content = func.zeroblob(len(attachment.content))  # type: ignore[assignment]


@event.listens_for(Attachment, "after_insert")
def _write_content(_mapper: Mapper[Any], connection: Connection, attachment: Attachment) -> None:
    content = inspect(attachment).info.pop("content", None)
    if content is not None:
        _write_in_pieces(connection, "attachments", "content", attachment.id, content)
        set_committed_value(attachment, "content", content)  # as stored: nothing to load again


def plain_connection(session: Session) -> Connection:
    """The session's connection, for a plain (Core) statement, once what the session holds unwritten is flushed.

    What `Session.execute` would do first (its autoflush), without the rest of
    its work, which is there to load objects and costs more than a short
    look-up or update itself.
    """
    if session.new or session.dirty or session.deleted:
        session.flush()
    return session.connection()


def add_written(session: Session, model: type[_Row], values: dict[str, Any]) -> _Row:
    """A row written by one plain INSERT ... RETURNING its key, and its object in the session as if read back.

    The unit of work's flush costs several times the statement on the act
    stage's path. ``values`` names every column but the generated key, so the
    object is given every column as written and nothing is read again; its
    relationships load when asked for.
    """
    table = model.__table__  # type: ignore[attr-defined]
    key = table.primary_key.columns[0]
    statement = _INSERTS.get(table.name)
    if statement is None:
        statement = _INSERTS[table.name] = insert(table).returning(key)
    written = model(**{key.key: plain_connection(session).execute(statement, values).scalar_one()}, **values)
    make_transient_to_detached(written)  # persistent once added: its columns count as loaded, none as changed
    session.add(written)
    return written


_Row = TypeVar("_Row")
_INSERTS: dict[str, Any] = {}


def change_written(session: Session, row: Any, values: dict[str, Any]) -> None:
    """Columns of a loaded row written by one plain UPDATE, and the object given them as written."""
    table = row.__table__
    key = table.primary_key.columns[0]
    names = tuple(sorted(values))
    statement = _UPDATES.get((table.name, names))
    if statement is None:
        statement = _UPDATES[(table.name, names)] = (
            update(table).where(key == bindparam("written_key"))
            .values({name: bindparam(f"new_{name}") for name in names}))
    plain_connection(session).execute(statement, {"written_key": getattr(row, key.key),
                                                  **{f"new_{name}": value for name, value in values.items()}})
    for name, value in values.items():
        set_committed_value(row, name, value)


_UPDATES: dict[tuple[str, tuple[str, ...]], Any] = {}


def load_raw(session: Session, inbound_id: int) -> bytes:
    """The stored bytes of a message, in the session's transaction, with one copy of them in memory.

    A driver's plain fetch holds several: SQLite's value and Python's bytes; on
    PostgreSQL libpq's input buffer (grown by doubling), its result and Python's
    bytes (some 100 MB for a 34 MB message). So SQLite's bytes are read through a
    blob handle straight into the bytes returned, and PostgreSQL's a slice at a
    time; a message smaller than one slice takes one query, as before.
    """
    connection = session.connection()
    with _driver(connection, f"reading message {inbound_id}") as driver:
        if connection.dialect.name != "sqlite":
            return _slices_read(driver, inbound_id)
        try:
            with driver.blobopen("inbound_raw", "raw", inbound_id, readonly=True) as blob:
                return bytes(blob.read())
        except sqlite3.OperationalError as exc:
            if str(exc).startswith("no such rowid"):
                raise LookupError(f"no stored message {inbound_id}") from exc
            raise


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
                             sha256=digest, received=utcnow())
        session.add(row)
        try:
            session.flush()
            _insert_raw(session.connection(), [(row.id, raw)])
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
            ids = _insert_group(connection, list(firsts), rows)
            _insert_raw(connection, list(zip(ids, raws, strict=True)))
    except (_StoredBefore, IntegrityError):  # a copy stored before, or by another process meanwhile
        return one_by_one()
    return [Stored(ids[index], duplicate=copy) for index, copy in order]


# The group commit's statements, said to the driver itself: they run for every message the edges
# accept, and SQLAlchemy's statement machinery (cache keys, parameter processing, result set-up)
# cost more than the insert (the SMTP edge's interpreter spent a fifth of its time there).
# Each dialect's own placeholders; `received` goes through the column type's own bind processor, so
# it is stored exactly as the ORM stores it; `reasons` is the empty JSON list the model defaults to.
_GROUP_COLUMNS = ("dedupe_key", "message_id", "sender", "subject", "source", "envelope_sender", "size", "sha256",
                  "received")
_GROUP_INSERT = {
    "sqlite": (f"INSERT INTO inbound_messages ({', '.join(_GROUP_COLUMNS)}, reasons) "
               f"VALUES ({', '.join('?' * len(_GROUP_COLUMNS))}, '[]') RETURNING id"),
    "postgresql": (f"INSERT INTO inbound_messages ({', '.join(_GROUP_COLUMNS)}, reasons) "
                   f"VALUES ({', '.join(['%s'] * len(_GROUP_COLUMNS))}, '[]') RETURNING id"),
}
_GROUP_SEEN = {
    "sqlite": "SELECT 1 FROM inbound_messages WHERE dedupe_key IN ({marks}) LIMIT 1",
    "postgresql": "SELECT 1 FROM inbound_messages WHERE dedupe_key = ANY(%s) LIMIT 1",
}


def _insert_group(connection: Connection, keys: list[str], rows: list[dict[str, Any]]) -> list[int]:
    """Insert the rows of a group (none of whose keys may be stored already) and return their ids, in order."""
    dialect = connection.dialect
    received = InboundMessage.__table__.c.received.type.dialect_impl(dialect).bind_processor(dialect)
    values = [tuple(row[column] for column in _GROUP_COLUMNS[:-1])
              + ((received(row["received"]) if received else row["received"]),) for row in rows]
    with _driver(connection, "storing messages") as driver:
        cursor = driver.cursor()
        try:
            if dialect.name == "sqlite":
                seen = cursor.execute(_GROUP_SEEN["sqlite"].format(marks=", ".join("?" * len(keys))), keys)
            else:
                seen = cursor.execute(_GROUP_SEEN["postgresql"], (keys,))
            if seen.fetchone() is not None:
                raise _StoredBefore
            ids = []
            for one in values:
                cursor.execute(_GROUP_INSERT[dialect.name], one)
                ids.append(cursor.fetchone()[0])
            return ids
        finally:
            cursor.close()


def _insert_raw(connection: Connection, messages: Sequence[tuple[int, bytes]]) -> None:
    """The raw bytes of just inserted messages, by their ids, in the same transaction, never copied whole."""
    if connection.dialect.name == "sqlite":
        # A message of one piece or less is bound as it is (its two copies are small); a larger one
        # is a zeroblob of its length, written into through a blob handle.
        small = [(inbound_id, raw) for inbound_id, raw in messages if len(raw) <= BLOB_PIECE]
        large = [(inbound_id, raw) for inbound_id, raw in messages if len(raw) > BLOB_PIECE]
        with _driver(connection, "storing messages") as driver:
            if small:
                driver.executemany("INSERT INTO inbound_raw (inbound_message_id, raw) VALUES (?, ?)", small)
            if large:
                driver.executemany("INSERT INTO inbound_raw (inbound_message_id, raw) VALUES (?, zeroblob(?))",
                                   [(inbound_id, len(raw)) for inbound_id, raw in large])
        for inbound_id, raw in large:
            _write_in_pieces(connection, "inbound_raw", "raw", inbound_id, raw)
        return
    with _driver(connection, _COPY_RAW) as driver, driver.cursor() as cursor, cursor.copy(_COPY_RAW) as copy:
        copy.write(_COPY_SIGNATURE)
        for inbound_id, raw in messages:
            copy.write(struct.pack("!hiii", 2, 4, inbound_id, len(raw)))  # two fields: an int4, then bytea
            copy.write(raw)  # psycopg hands it to libpq a little at a time
        copy.write(struct.pack("!h", -1))


# PostgreSQL's binary COPY (its documentation's "Binary Format"), framed here because psycopg's
# write_row builds each row in memory, and a parameter is copied whole into libpq's buffer, which
# keeps its size for as long as the connection lives (34 MB held for one 34 MB message).
_COPY_RAW = "COPY inbound_raw (inbound_message_id, raw) FROM STDIN (FORMAT BINARY)"
_COPY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + struct.pack("!ii", 0, 0)  # no flags, no header extension


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
