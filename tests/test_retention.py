"""Retention: the raw mail and files of cases closed long ago are emptied; the cases and their history stay."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select, update
from sqlalchemy.orm import Session

from conftest import DATA, CapturingRelay, Intake, compose
from intake.store.models import Attachment, Case, InboundMessage, OutboundMessage

ZACK = "Zack Morris <zack.morris@bayside.example>"
QUESTION = "Case Type: Ask a Question\nModule: Census\nDescription: Where is report {n}?\n"


def test_purge_empties_old_closed_cases_only_and_keeps_their_history(
        tmp_path: Path, database_url: str, capsys: pytest.CaptureFixture[str],
        relay: tuple[CapturingRelay, int]) -> None:
    intake = Intake(tmp_path, database_url, capsys, relay=relay)
    intake.config.write_text(intake.config.read_text() + "[retention]\npurge_closed_after_days = 30\n")
    assert intake.run("contacts", "import", str(DATA / "contacts.csv")).code == 0
    for n in (1, 2):
        intake.ingest(compose(ZACK, f"Report {n}", QUESTION.format(n=n),
                              attachments=(("report.csv", "text/csv", b"student,grade\n"),)))
        assert intake.run("close", str(n)).code == 0
    engine = create_engine(database_url)
    with Session(engine) as session, session.begin():  # case 1 was closed 40 days ago, case 2 today
        session.execute(update(Case).where(Case.number == 1)
                        .values(closed=dt.datetime.now(dt.UTC) - dt.timedelta(days=40)))

    dry = intake.run("purge", "--dry-run", "--json").json()
    assert dry == {"dry_run": True, "days": 30, "cases": [1], "inbound": 1, "outbound": 1, "attachments": 1,
                   "bytes": dry["bytes"]} and dry["bytes"] > 0  # type: ignore[index]
    with Session(engine) as session:
        assert all(m.raw for m in session.scalars(select(InboundMessage)))  # a dry run changes nothing

    ran = intake.run("purge")
    assert ran.code == 0 and "1 case(s) closed more than 30 days ago: emptied 1 received" in ran.out
    with Session(engine) as session:
        inbound = {m.case_number: m for m in session.scalars(select(InboundMessage))}
        assert inbound[1].raw == b"" and inbound[1].purged is not None and inbound[1].reasons
        assert inbound[1].subject == "Report 1" and inbound[1].sender == "zack.morris@bayside.example"
        assert inbound[2].raw != b"" and inbound[2].purged is None
        files = {a.case_number: a for a in session.scalars(select(Attachment))}
        assert files[1].content == b"" and files[1].sha256 and files[2].content == b"student,grade\n"
        sent = {m.case_number: m for m in session.scalars(select(OutboundMessage))}
        assert sent[1].raw == b"" and sent[2].raw != b""
    engine.dispose()
    shown = intake.show(1)
    assert shown["subject"] == "Report 1" and shown["description"] == "Where is report 1?"
    assert intake.run("purge", "--json").json()["inbound"] == 0  # type: ignore[index]  # nothing twice


def test_purge_without_retention_configured_is_an_error(intake: Intake) -> None:
    ran = intake.run("purge", "--dry-run")
    assert ran.code == 2 and "retention is off" in ran.err
