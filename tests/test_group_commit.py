"""Group commit at the SMTP edge: messages arriving together are made durable in one transaction.

Each message still gets its answer only after its commit; duplicates within a
group and copies stored before are recognised exactly as one by one.
"""
from __future__ import annotations

import asyncio

from sqlalchemy import select

from conftest import compose
from intake.mailin.accept import accept, accept_many, arrival
from intake.mailin.group_commit import GroupCommit
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
