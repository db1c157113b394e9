"""The JSON shapes printed by --json, built from rows stored on SQLite and PostgreSQL."""
from __future__ import annotations

import datetime as dt
import json

from sqlalchemy import select

from conftest import Intake, compose
from intake.cli.views import case_detail, case_summary, contact_view, inbound_view, outbox_view
from intake.store.database import Store
from intake.store.models import Account, Attachment, Case, Contact, InboundMessage, InboundRaw, OutboundMessage

NOON = dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC)


def minutes(n: int) -> dt.datetime:
    return NOON + dt.timedelta(minutes=n)


FIRST = (b"From: Seymour Skinner <skinner@springfield.example>\r\n"
         b"To: Springfield Support <Support@Intake.example>, edna@springfield.example\r\n"
         b"Cc: =?utf-8?q?Ot=C3=B6?= <otto@springfield.example>\r\n"
         b"Subject: Grades vanished\r\nMessage-ID: <first@client.example>\r\n\r\n"
         b"To: not-a-header@body.example\r\n")
SECOND = (b"From: skinner@springfield.example\r\nTo: support@intake.example\r\n"
          b"Subject: Re: [Case #1042] Grades vanished\r\nMessage-ID: <second@client.example>\r\n"
          b"In-Reply-To: <ack-1042@intake.example> (the acknowledgement)\r\n"
          b"References: <first@client.example> <ack-1042@intake.example>\r\n\r\nThanks\r\n")
ACK = (b"From: Campus Support <support@intake.example>\r\nTo: skinner@springfield.example\r\n"
       b"Subject: [Case #1042] Grades vanished\r\nMessage-ID: <ack-1042@intake.example>\r\n\r\nack\r\n")


def store_case(store: Store) -> None:
    """A case filed by one contact on behalf of another, with its mail and an attachment."""
    with store.session() as session, session.begin():
        district = Account(name="Springfield USD")
        skinner = Contact(email="skinner@springfield.example", first_name="Seymour", last_name="Skinner",
                          title="Principal", primary_phone="555-0100", contact_type="Authorized",
                          areas=["SIS", "Finance"], schema_bootcamp=dt.date(2021, 9, 7), accounts=[district])
        edna = Contact(email="edna@springfield.example", first_name="Edna", last_name="Krabappel",
                       contact_type="Technical", accounts=[district])
        case = Case(number=1042, account=district, contact=edna, submitted_by=skinner,
                    case_type="Data Restore", priority="High", subject="Grades vanished",
                    description="All of 4th grade's grades are gone.", module="Grade Book",
                    department="Hosting Operations", billable=False, created=NOON, modified=minutes(5),
                    fields={"Module": "Grade Book", "Approximate Date of Loss": "2026-11-27",
                            "Written Permission": True},
                    fields_as_written={"Module": "gradebook", "Approximate Date of Loss": "yesterday",
                                       "Written Permission": "Yes, I give permission to restore this data"})
        inbound = InboundMessage(dedupe_key="mid:first@client.example", message_id="first@client.example",
                                 sender="skinner@springfield.example", subject="Grades vanished", source="smtp",
                                 as_received=InboundRaw(raw=FIRST), size=len(FIRST), sha256="0" * 64, received=NOON,
                                 processed=minutes(1), outcome="created", reasons=["new case"], case=case)
        follow_up = InboundMessage(dedupe_key="mid:second@client.example", message_id="second@client.example",
                                   sender="skinner@springfield.example", subject="Re: [Case #1042] Grades vanished",
                                   source="imap", as_received=InboundRaw(raw=SECOND), size=len(SECOND),
                                   sha256="1" * 64, received=minutes(3), outcome="appended", reasons=[], case=case)
        session.add_all([case, inbound, follow_up])
        session.flush()
        session.add(Attachment(case=case, inbound_message_id=inbound.id, filename="grades.png",
                               content_type="image/png", size=5, sha256="2" * 64, content=b"\x89PNG\r"))
        session.add(OutboundMessage(message_id="ack-1042@intake.example", in_reply_to="first@client.example",
                                    kind="acknowledgement", recipients=["skinner@springfield.example",
                                                                        "edna@springfield.example"],
                                    subject="[Case #1042] Grades vanished", raw=ACK, status="sent", attempts=1,
                                    created=minutes(2), sent=minutes(2), case=case,
                                    inbound_message_id=inbound.id))


def load_case(store: Store, number: int = 1042) -> tuple[dict, dict]:
    with store.session() as session:
        case = session.scalars(select(Case).where(Case.number == number)).one()
        return case_summary(case), case_detail(case)


def test_contact_view(store: Store) -> None:
    store_case(store)
    with store.session() as session:
        skinner = session.scalars(select(Contact).where(Contact.email == "skinner@springfield.example")).one()
        view = contact_view(skinner)

    assert view == {
        "email": "skinner@springfield.example", "first_name": "Seymour", "last_name": "Skinner",
        "title": "Principal", "primary_phone": "555-0100", "secondary_phone": "", "contact_type": "Authorized",
        "areas": ["SIS", "Finance"], "schema_bootcamp": "2021-09-07", "active": True,
        "accounts": ["Springfield USD"],
        "bounces": 0,
        "bouncing": False,
    }
    json.dumps(view)


def test_case_summary(store: Store) -> None:
    store_case(store)

    summary, _ = load_case(store)

    assert summary == {
        "number": 1042, "case_type": "Data Restore", "priority": "High", "status": "new",
        "subject": "Grades vanished", "account": "Springfield USD", "contact": "edna@springfield.example",
        "submitted_by": "skinner@springfield.example", "department": "Hosting Operations", "billable": False,
        "created": "2026-11-28T12:00:00+00:00", "modified": "2026-11-28T12:05:00+00:00", "module": "Grade Book",
        "fields": {"Module": "Grade Book", "Approximate Date of Loss": "2026-11-27", "Written Permission": True},
    }
    json.dumps(summary)


def test_case_detail_orders_inbound_and_outbound_mail_by_time(store: Store) -> None:
    store_case(store)

    summary, detail = load_case(store)

    assert {k: detail[k] for k in summary} == summary
    assert set(detail) == set(summary) | {"description", "fields_as_written", "attachments", "messages", "comments",
                                          "linked_cases", "resolution", "resolved", "closed", "approved_by",
                                          "approved"}
    assert detail["comments"] == [] and detail["linked_cases"] == []
    assert detail["description"] == "All of 4th grade's grades are gone."
    assert detail["fields_as_written"]["Module"] == "gradebook"
    assert detail["attachments"] == [
        {"filename": "grades.png", "content_type": "image/png", "sniffed_type": None, "type_mismatch": False,
         "size": 5, "sha256": "2" * 64}]
    assert detail["messages"] == [
        {"direction": "inbound", "message_id": "first@client.example", "date": "2026-11-28T12:00:00+00:00",
         "from": "skinner@springfield.example",
         "to": ["support@intake.example", "edna@springfield.example", "otto@springfield.example"],
         "subject": "Grades vanished", "outcome": "created",
         "reasons": ["new case"], "kind": None, "status": None, "in_reply_to": None},
        {"direction": "outbound", "message_id": "ack-1042@intake.example", "date": "2026-11-28T12:02:00+00:00",
         "from": "support@intake.example", "to": ["skinner@springfield.example", "edna@springfield.example"],
         "subject": "[Case #1042] Grades vanished", "outcome": None, "reasons": [], "kind": "acknowledgement",
         "status": "sent", "in_reply_to": "first@client.example"},
        {"direction": "inbound", "message_id": "second@client.example", "date": "2026-11-28T12:03:00+00:00",
         "from": "skinner@springfield.example", "to": ["support@intake.example"],
         "subject": "Re: [Case #1042] Grades vanished",
         "outcome": "appended", "reasons": [], "kind": None, "status": None, "in_reply_to": "ack-1042@intake.example"},
    ]
    json.loads(json.dumps(detail))


def test_messages_whose_headers_cannot_be_read_have_no_addresses(store: Store) -> None:
    store_case(store)
    broken = (b"From: skinner@springfield.example\r\nTo: <<<@@>>>, \"unclosed\r\nCc: ,,,\r\n"
              b"In-Reply-To: no angle brackets here\r\n\xff\xfe: \x00\r\n\r\nbody")
    with store.session() as session, session.begin():
        case = session.scalars(select(Case)).one()
        session.add_all([
            InboundMessage(dedupe_key="sha256:broken", message_id=None, sender="skinner@springfield.example",
                           subject="", source="imap", as_received=InboundRaw(raw=broken), size=len(broken),
                           sha256="4" * 64, received=minutes(20), outcome="appended", reasons=[], case=case),
            InboundMessage(dedupe_key="sha256:png", message_id=None, sender=None, subject="", source="file:x.png",
                           as_received=InboundRaw(raw=bytes(range(256))), size=256, sha256="5" * 64,
                           received=minutes(21), outcome="ignored", reasons=[], case=case),
            OutboundMessage(message_id="bare@intake.example", in_reply_to=None, kind="comment",
                            recipients=["edna@springfield.example"], subject="x", raw=b"", status="queued",
                            created=minutes(22), case=case),
        ])

    _, detail = load_case(store)

    *_, broken_view, png_view, bare_view = detail["messages"]
    assert broken_view["to"] == [] and broken_view["in_reply_to"] is None
    assert png_view["to"] == [] and png_view["in_reply_to"] is None
    assert bare_view["from"] is None
    json.dumps(detail)


def test_inbound_view(store: Store) -> None:
    store_case(store)
    with store.session() as session, session.begin():
        session.add(InboundMessage(dedupe_key="sha256:abc", message_id=None, sender=None, subject="", source="imap",
                                   as_received=InboundRaw(raw=b"x"), size=1, sha256="3" * 64, received=minutes(10)))
    with store.session() as session:
        first, _, queued = [inbound_view(m) for m in
                            session.scalars(select(InboundMessage).order_by(InboundMessage.id))]

    assert first == {
        "id": first["id"], "message_id": "first@client.example", "sender": "skinner@springfield.example",
        "subject": "Grades vanished", "source": "smtp", "envelope_sender": None,
        "received": "2026-11-28T12:00:00+00:00",
        "processed": "2026-11-28T12:01:00+00:00", "outcome": "created", "reasons": ["new case"], "case": 1042,
        "size": len(FIRST), "error": None,
    }
    assert isinstance(first["id"], int)
    assert queued["processed"] is None and queued["outcome"] is None and queued["case"] is None
    assert queued["reasons"] == [] and queued["message_id"] is None
    json.dumps([first, queued])


def test_outbox_view(store: Store) -> None:
    store_case(store)
    with store.session() as session:
        view = outbox_view(session.scalars(select(OutboundMessage)).one())

    assert view == {
        "id": view["id"], "to": ["skinner@springfield.example", "edna@springfield.example"],
        "subject": "[Case #1042] Grades vanished", "status": "sent", "message_id": "ack-1042@intake.example",
        "in_reply_to": "first@client.example", "case": 1042, "kind": "acknowledgement", "attempts": 1,
        "created": "2026-11-28T12:02:00+00:00", "sent": "2026-11-28T12:02:00+00:00", "last_error": None,
    }
    json.dumps(view)


def test_show_json_reads_addresses_and_in_reply_to_from_the_stored_mail(intake: Intake) -> None:
    question = "Case Type: Ask a Question\nModule: Census\nDescription: Where is the household report?\n"
    intake.ingest(compose("Zack Morris <Zack.Morris@bayside.example>", "Households", question,
                          headers={"Cc": "Kelly Kapowski <kelly.kapowski@bayside.example>"}))
    [ack] = intake.outbox()
    intake.ingest(compose("zack.morris@bayside.example", f"Re: {ack['subject']}", "Found it, thanks.",
                          headers={"In-Reply-To": f"<{ack['message_id']}>"}))

    first, sent, reply = intake.show(ack["case"])["messages"]

    assert first["to"] == ["support@intake.example", "kelly.kapowski@bayside.example"]
    assert first["in_reply_to"] is None
    assert sent["direction"] == "outbound" and sent["from"] == "support@intake.example"
    assert reply["in_reply_to"] == ack["message_id"] and reply["to"] == ["support@intake.example"]
