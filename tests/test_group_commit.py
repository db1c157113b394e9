"""Group commit at the SMTP edge: messages arriving together are made durable in one transaction.

Each message still gets its answer only after its commit; duplicates within a
group and copies stored before are recognised exactly as one by one.
"""
from __future__ import annotations

import asyncio
import datetime as dt

import pytest
from sqlalchemy import select, text

from conftest import compose
from intake.mailin.accept import accept, accept_many, arrival
from intake.mailin.group_commit import GroupCommit
from intake.store import database
from intake.store.database import Store
from intake.store.models import InboundMessage

ZACK = "Zack Morris <zack.morris@bayside.example>"


def _rows(store: Store) -> list[InboundMessage]:
    with store.session() as session:
        return list(session.scalars(select(InboundMessage).order_by(InboundMessage.id)))


def test_a_group_is_stored_in_order_in_one_transaction(store: Store) -> None:
    raws = [compose(ZACK, f"Report {n}", "Case Type: Ask a Question\n", message_id=f"<r{n}@x>") for n in range(5)]
    stored = accept_many(store, [arrival(raw, "smtp:test", "zack.morris@bayside.example") for raw in raws])
    rows = _rows(store)
    assert [s.id for s in stored] == [r.id for r in rows] and not any(s.duplicate for s in stored)
    assert [r.message_id for r in rows] == [f"r{n}@x" for n in range(5)]
    assert [r.raw for r in rows] == raws and {r.envelope_sender for r in rows} == {"zack.morris@bayside.example"}
    assert len({r.received for r in rows}) == 1  # one commit


def test_copies_in_a_group_and_copies_stored_before_are_duplicates(store: Store) -> None:
    before = compose(ZACK, "Before", "text", message_id="<before@x>")
    first = accept(store, before, "smtp:test")
    twice = compose(ZACK, "Twice", "text", message_id="<twice@x>")
    stored = accept_many(store, [arrival(twice, "smtp:a"), arrival(twice, "smtp:b"), arrival(before, "smtp:c")])
    assert stored[1] == type(stored[0])(stored[0].id, duplicate=True)
    assert not stored[0].duplicate
    assert stored[2].id == first.id and stored[2].duplicate
    assert [r.message_id for r in _rows(store)] == ["before@x", "twice@x"]


def test_a_message_id_reused_on_other_content_in_one_group_is_a_message_of_its_own(store: Store) -> None:
    one = compose(ZACK, "One", "first text", message_id="<reused@x>")
    other = compose(ZACK, "Other", "a different text", message_id="<reused@x>")
    stored = accept_many(store, [arrival(one, "smtp:a"), arrival(other, "smtp:b")])
    assert not any(s.duplicate for s in stored) and stored[0].id != stored[1].id
    assert [r.subject for r in _rows(store)] == ["One", "Other"]


def test_sessions_finishing_data_together_share_one_commit_and_each_hears_of_its_own(store: Store) -> None:
    raws = [compose(ZACK, f"Burst {n}", "text", message_id=f"<burst{n}@x>") for n in range(10)]

    async def burst() -> list[int]:
        committer = GroupCommit(store)
        # All ten arrive before the writer first runs, as when ten sessions end DATA at once.
        futures = [committer.store_message(raw, "smtp:test", "") for raw in raws]
        return [(await future).id for future in futures]

    ids = asyncio.run(burst())
    rows = _rows(store)
    assert ids == [r.id for r in rows] and [r.raw for r in rows] == raws
    assert len({r.received for r in rows}) == 1


def test_a_message_another_process_stores_meanwhile_is_a_duplicate_and_the_rest_of_the_group_is_stored(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    # Another process commits one message of the group between the group's look-up and its insert:
    # here the look-up is made blind and the other process's copy is committed before it, which
    # is what the look-up sees in that race.
    raced = compose(ZACK, "Raced", "text", message_id="<raced@x>")
    calm = compose(ZACK, "Calm", "text", message_id="<calm@x>")
    other = accept(store, raced, "smtp:other process")
    monkeypatch.setitem(database._GROUP_SEEN, "sqlite",
                        "SELECT 1 FROM inbound_messages WHERE 0 AND dedupe_key IN ({marks})")
    monkeypatch.setitem(database._GROUP_SEEN, "postgresql",
                        "SELECT 1 FROM inbound_messages WHERE false AND dedupe_key = ANY(%s)")
    stored = accept_many(store, [arrival(calm, "smtp:a"), arrival(raced, "smtp:b")])
    rows = {r.subject: r for r in _rows(store)}
    assert set(rows) == {"Calm", "Raced"}  # one row each: the raced one is the other process's
    assert stored[1].duplicate and stored[1].id == other.id == rows["Raced"].id
    assert rows["Raced"].source == "smtp:other process"
    assert not stored[0].duplicate and stored[0].id == rows["Calm"].id and rows["Calm"].raw == calm


def test_a_group_stores_its_rows_exactly_as_the_orm_does(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    # The group's inserts go to the driver: its values must be those the ORM writes, to the character
    # (SQLite keeps a time as text: a whole second is "…:00.000000", as the ORM writes it).
    monkeypatch.setattr(database, "utcnow", lambda: dt.datetime(2026, 12, 2, 15, 0, tzinfo=dt.UTC))
    one_by_one = accept(store, compose(ZACK, "Alone", "text", message_id="<alone@x>"), "smtp:a")
    grouped = accept_many(store, [arrival(compose(ZACK, "Grouped", "text", message_id="<grouped@x>"), "smtp:b")])[0]
    with store.engine.connect() as connection:
        rows = {row[0]: row[1] for row in connection.execute(text("SELECT id, received FROM inbound_messages"))}
        reasons = connection.execute(text("SELECT reasons FROM inbound_messages ORDER BY id")).scalars().all()
    assert rows[grouped.id] == rows[one_by_one.id]
    assert reasons[0] == reasons[1]
