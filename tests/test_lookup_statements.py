"""The decision's look-ups cost one statement each, with nothing loaded lazily after them.

Every message asks for its sender (with the sender's districts), replies ask
for their case by a Message-ID or a number, and new cases ask for the case
rate. Each is counted here in SQL statements sent to the database, on SQLite
and PostgreSQL, and the act stage then finds the case and its account in the
session instead of asking again.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import EmailMessage
from typing import Any

from sqlalchemy import event, select
from sqlalchemy.orm import Session

from intake.act.cases import add_comment, contact_comment
from intake.act.handlers import store_case
from intake.act.worker import _inbound_row
from intake.mailout.outbox import case_thread, enqueue
from intake.store.database import Store
from intake.store.lookups import views_over
from intake.store.models import Account, Case, Contact, InboundMessage, InboundRaw, OutboundMessage
from parsers.message import Attachment
from routing.outcomes import CaseDraft
from routing.schema import CaseType, spec_for
from routing.states import Reply

NOW = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)


@contextmanager
def statements(store: Store) -> Iterator[list[str]]:
    seen: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        seen.append(statement)

    event.listen(store.engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(store.engine, "before_cursor_execute", count)


def _a_case_with_its_thread(store: Store) -> None:
    with store.session() as session, session.begin():
        bayside, valley = Account(name="Bayside"), Account(name="Valley High")
        zack = Contact(email="zack.morris@bayside.example", first_name="Zack", last_name="Morris",
                       contact_type="Authorized", accounts=[valley, bayside])
        session.add_all([bayside, valley, zack])
        session.flush()
        case = Case(account_id=bayside.id, contact_id=zack.id, submitted_by_id=zack.id, case_type="Ask a Question",
                    priority="Low", subject="Household report", description="Where is it?", department="Support",
                    created=NOW, modified=NOW)
        session.add(case)
        session.flush()
        session.add(InboundMessage(dedupe_key="mid:first@bayside.example", message_id="first@bayside.example",
                                   sender=zack.email, source="test", as_received=InboundRaw(raw=b""), size=0,
                                   sha256="", received=NOW, case_number=case.number))
        session.add(OutboundMessage(message_id="ack@intake.example", kind="acknowledgement", recipients=[zack.email],
                                    subject="[Case #1]", raw=b"", status="sent", case_number=case.number))


def test_a_contact_and_its_districts_are_one_statement(store: Store) -> None:
    _a_case_with_its_thread(store)
    with store.session() as session, statements(store) as seen:
        zack = views_over(session).directory.contact_by_email("Zack.Morris@bayside.example")
        assert zack is not None and [a.name for a in zack.accounts] == ["Bayside", "Valley High"]
        assert views_over(session).directory.contact_by_email("nobody@bayside.example") is None
    assert len(seen) == 2, seen


def test_a_case_by_number_is_one_statement_and_then_in_the_session(store: Store) -> None:
    _a_case_with_its_thread(store)
    with store.session() as session, statements(store) as seen:
        case = views_over(session).threads.case(1)
        assert case is not None
        assert (case.account_name, case.contact_email) == ("Bayside", "zack.morris@bayside.example")
        _act_stage_reads_the_case(session)
    assert len(seen) == 1, "\n\n".join(seen)


def _act_stage_reads_the_case(session: Session) -> None:
    case = session.get(Case, 1)
    assert case is not None and case.account.name == "Bayside" and case.contact.first_name == "Zack"


def test_a_case_by_message_id_is_two_statements_received_or_sent(store: Store) -> None:
    _a_case_with_its_thread(store)
    for message_id in ("<first@bayside.example>", "<ack@intake.example>"):
        with store.session() as session, statements(store) as seen:
            case = views_over(session).threads.case_of_message_id(message_id)
            assert case is not None and case.number == 1
        assert len(seen) == 2, seen
    with store.session() as session, statements(store) as seen:
        assert views_over(session).threads.case_of_message_id("<elsewhere@example.org>") is None
    assert len(seen) == 1, "\n\n".join(seen)


def test_the_case_rate_of_a_sender_and_a_district_is_one_statement(store: Store) -> None:
    _a_case_with_its_thread(store)
    with store.session() as session, statements(store) as seen:
        by_sender, by_account = views_over(session).cases.cases_created_since(1, 1, NOW - dt.timedelta(hours=1), 1, 2)
        assert (by_sender.count, by_account.count) == (1, 1)
        assert (by_sender.limit_th_newest, by_account.limit_th_newest) == (NOW, None)
        assert views_over(session).cases.cases_created_since(99, 1, NOW - dt.timedelta(hours=1), 1, 1)[0].count == 0
    assert len(seen) == 2, seen


def test_the_case_rate_counts_the_window_and_finds_the_case_whose_leaving_frees_a_place(store: Store) -> None:
    """Five cases in the hour (one from another sender), one before it: counted in the database, whatever the limit."""
    _a_case_with_its_thread(store)  # case 1 at NOW, by Zack (contact 1) for Bayside (account 1)
    made = [NOW - dt.timedelta(minutes=m) for m in (50, 40, 30, 20)] + [NOW - dt.timedelta(minutes=70)]
    with store.session() as session, session.begin():
        other = Contact(email="kelly.kapowski@bayside.example", first_name="Kelly", last_name="Kapowski",
                        contact_type="Authorized")
        session.add(other)
        session.flush()
        for number, created in enumerate(made):
            by = other.id if number == 3 else 1
            session.add(Case(account_id=1, contact_id=by, submitted_by_id=by, case_type="Ask a Question",
                             priority="Low", subject=f"Question {number}", description="?", department="Support",
                             created=created, modified=created))
    since = NOW - dt.timedelta(hours=1)
    with store.session() as session:
        cases = views_over(session).cases
        by_sender, by_account = cases.cases_created_since(1, 1, since, 3, 5)
        assert (by_sender.count, by_account.count) == (4, 5)
        # Zack's in the hour, newest first: NOW, -30, -40, -50 min; the third newest is 40 minutes old.
        assert by_sender.limit_th_newest == NOW - dt.timedelta(minutes=40)
        assert by_account.limit_th_newest == NOW - dt.timedelta(minutes=50)
        by_sender, by_account = cases.cases_created_since(1, 1, since, 5, 6)
        assert (by_sender.limit_th_newest, by_account.limit_th_newest) == (None, None)
        assert cases.cases_created_since(1, 1, since, 1, 1)[0].limit_th_newest == NOW


def _answer(message_id: str) -> EmailMessage:
    message = EmailMessage()
    message["Message-ID"] = f"<{message_id}>"
    message["In-Reply-To"] = "<first@bayside.example>"
    message["Subject"] = "[Case #1] Received: Household report"
    message.set_content("We have your request.\n")
    return message


def test_an_answer_is_queued_in_one_insert_and_the_thread_in_the_transaction_lists_it(store: Store) -> None:
    _a_case_with_its_thread(store)
    with store.session() as session, session.begin():
        case = session.get(Case, 1)
        assert case is not None
        address = case.contact.email
        with statements(store) as seen:
            enqueue(session, _answer("second@intake.example"), Reply.ACKNOWLEDGEMENT, [address], case=case,
                    inbound_id=1)
        assert [s.split()[:3] for s in seen] == [["INSERT", "INTO", "outbound_messages"]], seen
        # Read from the database, in the same transaction: the row written past the unit of work is there.
        assert case_thread(case).references == ("first@bayside.example", "ack@intake.example",
                                                "second@intake.example")
        # Now the case's outbox is loaded: the next answer goes into it, and the thread shows it at once.
        enqueue(session, _answer("third@intake.example"), Reply.COMMENT, [address], case=case)
        thread = case_thread(case)
        assert thread.in_reply_to == "third@intake.example"
        assert thread.references[-2:] == ("second@intake.example", "third@intake.example")
    with store.session() as session:
        rows = session.scalars(select(OutboundMessage).order_by(OutboundMessage.id)).all()
        assert [(r.message_id, r.kind, r.in_reply_to, r.recipients, r.case_number, r.inbound_message_id, r.status)
                for r in rows[1:]] == [
            ("second@intake.example", "acknowledgement", "first@bayside.example", ["zack.morris@bayside.example"],
             1, 1, "queued"),
            ("third@intake.example", "comment", "first@bayside.example", ["zack.morris@bayside.example"], 1, None,
             "queued")]
        assert rows[1].created.tzinfo is not None and rows[1].attempts == 0
        assert rows[1].raw == _answer("second@intake.example").as_bytes()


def test_a_new_case_is_one_insert_and_its_columns_are_not_read_again(store: Store) -> None:
    _a_case_with_its_thread(store)
    with store.session() as session, session.begin():
        zack = views_over(session).directory.contact_by_email("zack.morris@bayside.example")
        assert zack is not None
        valley = next(a for a in zack.accounts if a.name == "Valley High")
        draft = CaseDraft(spec=spec_for(CaseType.REPORT_AN_OUTAGE), account=valley, contact=zack, submitted_by=zack,
                          priority="Critical", priority_note=None, subject="Campus is down", description="503",
                          fields={"Error Message": "503"}, fields_as_written={"Error Message": "503"}, module=None,
                          department="Hosting Operations",
                          attachments=(Attachment.of("screen.png", "image/png", b"\x89PNG\r\n\x1a\n" + b"0" * 64),))
        with statements(store) as seen:
            case = store_case(session, draft, 1, NOW)
            # Everything the act stage and the answer read of it, without asking the database again.
            shown = (case.number, case.status, case.priority, case.created, case.modified, case.closed,
                     case.billable, case.follows_case, case.account.name, case.contact.first_name)
        assert [s.split()[:3] for s in seen] == [["INSERT", "INTO", "cases"]], seen
        assert shown == (2, "new", "Critical", NOW, NOW, None, False, None, "Valley High", "Zack")
        assert case in session and not session.is_modified(case)
    with store.session() as session:
        stored = session.get(Case, 2)
        assert stored is not None
        assert (stored.case_type, stored.subject, stored.fields, stored.status, stored.created, stored.account_id) == (
            "Report an Outage", "Campus is down", {"Error Message": "503"}, "new", NOW, valley.id)
        assert [(a.filename, a.size, a.inbound_message_id) for a in stored.attachments] == [("screen.png", 72, 1)]


def test_a_reply_is_one_insert_of_its_comment_and_one_update_of_its_case(store: Store) -> None:
    _a_case_with_its_thread(store)
    later = NOW + dt.timedelta(minutes=5)
    with store.session() as session, session.begin():
        case = session.get(Case, 1)
        assert case is not None and case.status == "new" and [c.body for c in case.comments] == []
        with statements(store) as seen:
            comment = contact_comment(session, case, "zack.morris@bayside.example", "Still broken.", (), 1, False)
            shown = (comment.id, comment.case_number, comment.created, case.status, case.modified, case.closed)
        assert [s.split()[:2] for s in seen] == [["INSERT", "INTO"], ["UPDATE", "cases"]], seen
        assert shown == (1, 1, shown[2], "open", shown[2], None)  # the case modified when the comment was made
        assert not session.is_modified(case) and not session.is_modified(comment)
        # Read before, the case's comments are read again: the new one is among them.
        assert [c.body for c in case.comments] == ["Still broken."]
        add_comment(session, case, "staff@intake.example", "Looking.", public=False, now=later,
                    attachments=(Attachment.of("log.txt", "text/plain", b"trace"),))
    with store.session() as session:
        stored = session.get(Case, 1)
        assert stored is not None and (stored.status, stored.modified) == ("open", later)
        assert [(c.author, c.body, c.public) for c in stored.comments] == [
            ("zack.morris@bayside.example", "Still broken.", True), ("staff@intake.example", "Looking.", False)]
        assert [(a.filename, a.comment_id) for a in stored.attachments] == [("log.txt", stored.comments[1].id)]


def test_the_worker_reads_a_stored_message_in_one_select_and_its_bytes_only_when_asked(store: Store) -> None:
    _a_case_with_its_thread(store)
    with store.session() as session, session.begin():
        with statements(store) as seen:
            row = _inbound_row(session, 1)
            assert row is not None and row in session and not session.is_modified(row)
            shown = (row.message_id, row.sender, row.outcome, row.reasons, row.received, row.case_number)
        assert len(seen) == 1 and "inbound_raw" not in seen[0], seen
        assert shown == ("first@bayside.example", "zack.morris@bayside.example", None, [], NOW, 1)
        assert row.raw == b"" and _inbound_row(session, 1) is row
        assert _inbound_row(session, 99) is None
