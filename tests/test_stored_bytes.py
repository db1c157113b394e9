"""A message's bytes are stored with its row or not at all, and read back whole, whatever their size.

They are in a table of their own (`InboundRaw`), written on SQLite through a
blob handle a piece at a time and on PostgreSQL by COPY, and read back from
SQLite through a blob handle and from PostgreSQL a slice at a time
(`intake.store.database`); none of that may show.
"""
from __future__ import annotations

import random

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import SQLAlchemyError

from intake.mailin.accept import accept, accept_many, arrival
from intake.store.database import BLOB_PIECE, RAW_SLICE, Store, load_raw
from intake.store.models import InboundMessage, InboundRaw

SIZES = sorted({100, RAW_SLICE, RAW_SLICE + 1, BLOB_PIECE, BLOB_PIECE + 1, 3 * BLOB_PIECE + 5})
REFUSE_BYTES = {  # a trigger that fails every insert of a message's bytes
    "sqlite": ["CREATE TRIGGER refuse BEFORE INSERT ON inbound_raw BEGIN SELECT RAISE(ABORT, 'disk full'); END"],
    "postgresql": ["CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS"
                   " $$ BEGIN RAISE EXCEPTION 'disk full'; END $$",
                   "CREATE TRIGGER refuse BEFORE INSERT ON inbound_raw FOR EACH ROW EXECUTE FUNCTION refuse()"],
}


def _message(size: int) -> bytes:
    return b"Subject: export\r\n\r\n" + random.Random(size).randbytes(size - 19)


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("way_in", ["one", "group"])
def test_a_stored_message_is_read_back_whole_whatever_its_size(store: Store, size: int, way_in: str) -> None:
    raw = _message(size)
    stored = accept(store, raw, "smtp:test") if way_in == "one" else accept_many(store, [arrival(raw, "file:x")])[0]
    with store.session() as session:
        assert load_raw(session, stored.id) == raw
        assert session.get(InboundMessage, stored.id).raw == raw  # type: ignore[union-attr]


def test_several_messages_stored_together_keep_their_own_bytes(store: Store) -> None:
    raws = [_message(size) for size in (100, 2 * BLOB_PIECE + 7, 300)]
    stored = accept_many(store, [arrival(raw, "file:x") for raw in raws])
    with store.session() as session:
        assert [load_raw(session, one.id) for one in stored] == raws


@pytest.mark.parametrize("way_in", ["one", "group"])
def test_a_message_whose_bytes_cannot_be_stored_is_not_stored_at_all(store: Store, way_in: str) -> None:
    with store.engine.begin() as connection:
        for statement in REFUSE_BYTES[connection.dialect.name]:
            connection.execute(text(statement))
    raw = _message(2 * BLOB_PIECE)
    with pytest.raises(SQLAlchemyError):  # what every edge answers "try later" for, whichever call failed
        if way_in == "one":
            accept(store, raw, "smtp:test")
        else:
            accept_many(store, [arrival(raw, "file:x")])
    with store.session() as session:
        assert session.scalar(select(func.count()).select_from(InboundMessage)) == 0
        assert session.scalar(select(func.count()).select_from(InboundRaw)) == 0


def test_reading_a_message_that_is_not_stored_says_so(store: Store) -> None:
    with store.session() as session, pytest.raises(LookupError, match="no stored message 7"):
        load_raw(session, 7)
