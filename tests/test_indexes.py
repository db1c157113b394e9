"""Every look-up on the hot path is answered by an index, on SQLite and on PostgreSQL.

The statements are the real ones: the look-ups the decision makes (contact
by address, case by a Message-ID in References, the reply-cap and case-rate
counts, held mail), the worker's pending rows and the outbox's due rows are
run once against the schema the migrations make, their SQL captured, and
each one's query plan read back with EXPLAIN. On PostgreSQL sequential scans
are switched off for the plan, so a table too small to bother with an index
still shows whether one could be used.
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import create_engine, event, inspect, text

from intake.act.worker import _claim_batch
from intake.mailout.delivery import _due_ids
from intake.store.database import open_store
from intake.store.lookups import views_over
from intake.store.migrate import upgrade

NOW = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)


def test_every_hot_path_lookup_uses_an_index(database_url: str) -> None:
    upgrade(database_url)
    store = open_store(database_url)
    captured: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            captured.append((statement, parameters))

    event.listen(store.engine, "before_cursor_execute", capture)
    try:
        with store.session() as session:
            views = views_over(session)
            views.directory.contact_by_email("zack.morris@bayside.example")
            views.threads.case_of_message_id("<some.reply@client.example>")
            views.replies.automatic_replies_since("zack.morris@bayside.example", NOW)
            views.replies.held_notices_since("zack.morris@bayside.example", NOW)
            views.cases.cases_created_since(1, 1, NOW, 30, 60)
            views.cases.held_from("zack.morris@bayside.example")
        with store.session() as session, session.begin():
            _claim_batch(session, 0, 20)  # the worker's claim of unprocessed messages
        _due_ids(store, NOW)
    finally:
        event.remove(store.engine, "before_cursor_execute", capture)
    assert len(captured) >= 8, captured

    full_scans = []
    engine = create_engine(database_url)
    with engine.connect() as connection:
        postgresql = connection.dialect.name == "postgresql"
        if postgresql:
            connection.execute(text("SET enable_seqscan = off"))
        for statement, parameters in captured:
            explain = "EXPLAIN " if postgresql else "EXPLAIN QUERY PLAN "
            rows = connection.exec_driver_sql(explain + statement, parameters).all()
            plan = "\n".join(str(row[-1]) for row in rows)
            scanned = "Seq Scan" in plan if postgresql else any(
                line.strip().startswith("SCAN ") and "USING" not in line
                and line.strip() != "SCAN CONSTANT ROW"  # a SELECT of subqueries alone: no table read
                for line in plan.splitlines())
            if scanned:
                full_scans.append(f"{statement}\n{plan}")
    engine.dispose()
    assert not full_scans, "\n\n".join(full_scans)


def test_the_indexes_exist_after_upgrading(database_url: str) -> None:
    upgrade(database_url)
    engine = create_engine(database_url)
    inspector = inspect(engine)
    names = {index["name"] for table in ("inbound_messages", "outbound_messages", "cases")
             for index in inspector.get_indexes(table)}
    engine.dispose()
    assert {"ix_inbound_messages_message_id", "ix_outbound_messages_status_next_attempt",
            "ix_cases_submitted_by_id_created"} <= names
