"""The migrations are proven on data: a database holding rows made at the first revision is upgraded
to the latest, on SQLite and PostgreSQL, and keeps every row and every value."""
from __future__ import annotations

import datetime as dt
from typing import Any

from alembic import command
from sqlalchemy import MetaData, create_engine, func, select

from intake.store.migrate import alembic_config, head, state_of, upgrade

WHEN = dt.datetime(2026, 11, 2, 9, 30)
ROWS: dict[str, list[dict[str, Any]]] = {
    "accounts": [{"id": 1, "name": "Bayside School (TESTING)"}, {"id": 2, "name": "Valley District"}],
    "contacts": [{"id": n, "email": f"contact{n}@bayside.example", "first_name": f"First{n}", "last_name": "Last",
                  "title": "Coordinator", "primary_phone": "555-0100", "secondary_phone": "", "contact_type":
                  "Authorized", "areas": ["SIS"], "schema_bootcamp": dt.date(2020, 6, 1), "active": True,
                  "bounces": 0, "bouncing": False, "last_bounce": None, "created": WHEN, "modified": WHEN}
                 for n in (1, 2, 3)],
    "account_contacts": [{"account_id": 1, "contact_id": 1}, {"account_id": 1, "contact_id": 2},
                         {"account_id": 2, "contact_id": 3}],
    "cases": [{"number": n, "account_id": 1, "contact_id": 1, "submitted_by_id": 2, "case_type": "Ask a Question",
               "priority": "Medium", "subject": f"Question {n} — café", "description": "Where is the report?",
               "fields": {"Module": "Census"}, "fields_as_written": {"Module": "census"}, "module": "Census",
               "status": "open", "department": "Application Support", "billable": False, "resolution": None,
               "resolved": None, "closed": None, "approved_by": None, "approved": None, "follows_case": None,
               "created": WHEN, "modified": WHEN} for n in (1, 2)],
    "inbound_messages": [{"id": n, "dedupe_key": f"m{n}@client.example", "message_id": f"m{n}@client.example",
                          "sender": "contact2@bayside.example", "subject": f"Question {n}", "source": "smtp:127.0.0.1",
                          "raw": b"From: x\r\n\r\nbody\x00\xff", "size": 17, "sha256": "0" * 64, "received": WHEN,
                          "processed": WHEN, "outcome": "case_created", "reasons": ["case created"], "error": None,
                          "case_number": n} for n in (1, 2)],
    "comments": [{"id": 1, "case_number": 1, "author": "contact2@bayside.example", "body": "More detail",
                  "public": True, "created": WHEN, "inbound_message_id": 2}],
    "outbound_messages": [{"id": 1, "message_id": "intake.1@intake.example", "in_reply_to": "m1@client.example",
                           "kind": "acknowledgement", "recipients": ["contact2@bayside.example"],
                           "subject": "[Case #1] Question 1", "raw": b"Subject: x\r\n\r\nok", "status": "sent",
                           "attempts": 1, "next_attempt": None, "last_error": None, "created": WHEN, "sent": WHEN,
                           "case_number": 1, "inbound_message_id": 1}],
    "attachments": [{"id": 1, "case_number": 1, "inbound_message_id": 1, "comment_id": None,
                     "filename": "report.pdf", "content_type": "application/pdf", "size": 4, "sha256": "1" * 64,
                     "content": b"%PDF"}],
    "imap_state": [{"mailbox": "district", "folder": "INBOX", "uid_validity": 4_000_000_000, "last_uid": 17,
                    "updated": WHEN}],
}


def test_a_database_with_data_from_the_first_revision_upgrades_keeping_every_row(database_url: str) -> None:
    engine = create_engine(database_url)
    with engine.begin() as connection:
        command.upgrade(alembic_config(connection), "0001")
    with engine.begin() as connection:
        first = MetaData()
        first.reflect(connection)
        for table, rows in ROWS.items():
            connection.execute(first.tables[table].insert(), rows)
    engine.dispose()

    upgrade(database_url)  # what `intake db upgrade` does

    engine = create_engine(database_url)
    with engine.connect() as connection:
        assert state_of(connection).revision == head()
        latest = MetaData()
        latest.reflect(connection)
        for table, rows in ROWS.items():
            columns = latest.tables[table].c
            assert connection.scalar(select(func.count()).select_from(latest.tables[table])) == len(rows), table
            keys = [column.name for column in latest.tables[table].primary_key.columns]
            for row in rows:
                where = [columns[key] == row[key] for key in keys]
                stored = dict(connection.execute(select(latest.tables[table]).where(*where)).mappings().one())
                if table == "inbound_messages":  # its bytes moved to a table of their own (0011)
                    raw = latest.tables["inbound_raw"].c
                    stored["raw"] = connection.scalar(select(raw.raw).where(raw.inbound_message_id == row["id"]))
                for name, value in row.items():
                    assert stored[name] == value, (table, name, stored[name], value)
    engine.dispose()
