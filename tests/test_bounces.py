"""Bounces of our own mail are matched to the outbox row and counted against the contact.

The fixtures under tests/data/bounces/ are real-world shapes: Postfix's RFC
3464 report, an Office 365 NDR, a Gmail bounce, a Postfix delay warning and a
qmail (non-RFC 3464) failure notice. Each refers to an acknowledgement whose
Message-ID the test puts in the outbox.
"""
from __future__ import annotations

import datetime as dt
import email
import email.message
from email import policy as email_policy
from pathlib import Path

import pytest

from conftest import DATA, SUPPORT, compose
from intake.act.bounces import clear_bouncing, record_bounce
from intake.config import Config, config_from_mapping
from intake.mailout.delivery import SUPPRESSED_BOUNCING, deliver_pending
from intake.store.database import Store
from intake.store.models import Contact, OutboundMessage
from parsers.submission import parse
from routing.schema import FORMS

T0 = dt.datetime(2025, 3, 4, 14, 5, tzinfo=dt.UTC)
BOUNCES = DATA / "bounces"
KELLY = "kelly.kapowski@bayside.example"
SLATER = "ac.slater@bayside.example"

POSTFIX = "postfix-5.1.1-user-unknown.eml"
OFFICE365 = "office365-ndr-5.1.10.eml"
GMAIL = "gmail-5.1.1-account-does-not-exist.eml"
DELAYED = "postfix-4.4.1-delayed.eml"
QMAIL = "qmail-nonstandard.eml"
# The Message-ID of the acknowledgement each fixture returns.
BOUNCED_ID = {
    POSTFIX: "intake.5f1c2e7a9b3d4c0e8a6f1b2c3d4e5f60@intake.example",
    OFFICE365: "intake.0a9b8c7d6e5f40312a1b2c3d4e5f6a7b@intake.example",
    GMAIL: "intake.c3d2e1f0a9b84765c4d3e2f1a0b9c8d7@intake.example",
    DELAYED: "intake.7e6d5c4b3a2910f8e7d6c5b4a3928170@intake.example",
    QMAIL: "intake.91a2b3c4d5e6f708192a3b4c5d6e7f80@intake.example",
}


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return config_from_mapping({"intake": {"support_addresses": [SUPPORT]},
                                "outgoing": {"maildir": str(tmp_path / "outgoing")},
                                "conversations": {"bounces_to_suspend": 3}}, base=tmp_path, path=None)


@pytest.fixture
def contacts(store: Store) -> Store:
    with store.session() as session, session.begin():
        for address in (KELLY, SLATER, "zack.morris@bayside.example"):
            session.add(Contact(email=address, contact_type="Technical"))
    return store


def sent_acknowledgement(store: Store, to: str, message_id: str, sent: dt.datetime = T0 - dt.timedelta(minutes=3),
                         status: str = "sent") -> None:
    with store.session() as session, session.begin():
        session.add(OutboundMessage(message_id=message_id, kind="acknowledgement", recipients=[to],
                                    subject="[Case #1042] Received", raw=b"Subject: x\r\n\r\nx\r\n", status=status,
                                    attempts=1, created=sent, sent=sent if status == "sent" else None))


def receive(store: Store, raw: bytes, config: Config, now: dt.datetime = T0) -> str | None:
    """What the act stage does with a delivery report the parse stage found, in its transaction."""
    report = parse(raw, FORMS).report
    if report is None:
        return None
    with store.session() as session, session.begin():
        return record_bounce(session, report, config, now)


def fixture(name: str) -> bytes:
    return (BOUNCES / name).read_bytes()


def contact(store: Store, address: str) -> Contact:
    with store.session() as session:
        return session.query(Contact).filter_by(email=address).one()


def outbound(store: Store, message_id: str) -> OutboundMessage:
    with store.session() as session:
        return session.query(OutboundMessage).filter_by(message_id=message_id).one()


# --- permanent failures ----------------------------------------------------------------


@pytest.mark.parametrize("name, diagnostic", [
    (POSTFIX, '5.1.1 unknown user: "kelly.kapowski"'),
    (OFFICE365, "550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup"),
    (GMAIL, "550 5.1.1 The email account that you tried to reach does not exist."),
])
def test_a_bounce_is_matched_to_the_mail_it_returns_and_counted(contacts: Store, config: Config, name: str,
                                                                 diagnostic: str) -> None:
    store = contacts
    bounced = BOUNCED_ID[name]
    sent_acknowledgement(store, KELLY, bounced)
    # A later acknowledgement to Kelly: the bounce must be matched by Message-ID, not by "the latest".
    sent_acknowledgement(store, KELLY, "intake.later@intake.example", sent=T0 - dt.timedelta(minutes=1))

    reason = receive(store, fixture(name), config)

    assert reason is not None
    assert reason.startswith(f"bounce of <{bounced}> to {KELLY}: {diagnostic}")
    assert reason.endswith("(1 of 3 before suspension)")
    kelly = contact(store, KELLY)
    assert (kelly.bounces, kelly.bouncing, kelly.last_bounce) == (1, False, T0)
    assert (outbound(store, bounced).last_error or "").startswith(f"bounced: {diagnostic}")
    assert outbound(store, bounced).status == "sent"
    assert outbound(store, "intake.later@intake.example").last_error is None


def test_the_third_bounce_suspends_the_contact_and_the_outbox_stops_mailing_them(
        contacts: Store, config: Config) -> None:
    store = contacts
    reasons = []
    for minutes, name in enumerate((POSTFIX, OFFICE365, GMAIL)):
        sent_acknowledgement(store, KELLY, BOUNCED_ID[name])
        reasons.append(receive(store, fixture(name), config, now=T0 + dt.timedelta(minutes=minutes)))
        assert contact(store, KELLY).bouncing is (minutes == 2)

    assert [r.rpartition("(")[2] for r in reasons if r] == [
        "1 of 3 before suspension)", "2 of 3 before suspension)",
        f"3 of 3: {KELLY} is suspended until staff clear it with `intake contacts clear-bounce {KELLY}`)"]
    kelly = contact(store, KELLY)
    assert (kelly.bounces, kelly.bouncing, kelly.last_bounce) == (3, True, T0 + dt.timedelta(minutes=2))

    sent_acknowledgement(store, KELLY, "intake.next@intake.example", status="queued")
    assert deliver_pending(store, config, now=T0) == 0
    assert (outbound(store, "intake.next@intake.example").status,
            outbound(store, "intake.next@intake.example").last_error) == ("suppressed", SUPPRESSED_BOUNCING)


def test_clearing_a_bouncing_contact_lets_mail_through_and_starts_the_count_afresh(
        contacts: Store, config: Config) -> None:
    store = contacts
    with store.session() as session, session.begin():
        kelly = session.query(Contact).filter_by(email=KELLY).one()
        kelly.bounces, kelly.bouncing = 3, True
    with store.session() as session, session.begin():
        assert clear_bouncing(session, "Kelly.Kapowski@Bayside.example") is True
        assert clear_bouncing(session, "nobody@bayside.example") is False
    assert (contact(store, KELLY).bounces, contact(store, KELLY).bouncing) == (0, False)

    sent_acknowledgement(store, KELLY, "intake.next@intake.example", status="queued")
    assert deliver_pending(store, config, now=T0) == 1


def test_the_same_bounce_received_twice_counts_once(contacts: Store, config: Config) -> None:
    store = contacts
    sent_acknowledgement(store, KELLY, BOUNCED_ID[POSTFIX])
    receive(store, fixture(POSTFIX), config)
    again = receive(store, fixture(POSTFIX), config)

    assert again is not None and again.endswith("(this message's bounce was already counted)")
    assert contact(store, KELLY).bounces == 1


# --- delays don't count ------------------------------------------------------------------


def test_a_delayed_dsn_is_recorded_but_not_counted(contacts: Store, config: Config) -> None:
    store = contacts
    delayed = BOUNCED_ID[DELAYED]
    sent_acknowledgement(store, KELLY, delayed)
    for _ in range(4):
        reason = receive(store, fixture(DELAYED), config)

    assert reason == (f"delayed delivery of <{delayed}> to {KELLY}: 4.4.1 connect to mx1.bayside.example"
                      f"[203.0.113.25]:25: Connection timed out (temporary; not counted)")
    kelly = contact(store, KELLY)
    assert (kelly.bounces, kelly.bouncing, kelly.last_bounce) == (0, False, None)
    assert outbound(store, delayed).last_error == ("delayed: 4.4.1 connect to mx1.bayside.example[203.0.113.25]:25: "
                                                   "Connection timed out")


# --- non-standard bounces and weaker matches ------------------------------------------------


def test_a_qmail_bounce_is_matched_by_the_message_id_in_its_quoted_copy(contacts: Store, config: Config) -> None:
    store = contacts
    bounced = BOUNCED_ID[QMAIL]
    sent_acknowledgement(store, SLATER, bounced)

    reason = receive(store, fixture(QMAIL), config)

    assert reason == (f"bounce of <{bounced}> to {SLATER}: Remote host said: 550 5.2.1 <{SLATER}>: "
                      f"Mailbox disabled for this recipient (1 of 3 before suspension)")
    assert contact(store, SLATER).bounces == 1


def _without_returned_message(raw: bytes, in_reply_to: str | None = None) -> bytes:
    """The Postfix report without its returned message, as some MTAs send it."""
    report = email.message_from_bytes(raw, policy=email_policy.compat32)
    parts = [part for part in report.get_payload() if isinstance(part, email.message.Message)]
    report.set_payload([part for part in parts if part.get_content_type() != "message/rfc822"])
    if in_reply_to:
        report["In-Reply-To"] = f"<{in_reply_to}>"
    return report.as_bytes()


def test_without_a_returned_message_in_reply_to_identifies_the_mail(contacts: Store, config: Config) -> None:
    store = contacts
    sent_acknowledgement(store, KELLY, "intake.first@intake.example")
    sent_acknowledgement(store, KELLY, "intake.second@intake.example", sent=T0 - dt.timedelta(minutes=1))

    reason = receive(store, _without_returned_message(fixture(POSTFIX), "intake.first@intake.example"), config)

    assert reason is not None and reason.startswith(f"bounce of <intake.first@intake.example> to {KELLY}")


def test_with_nothing_to_identify_the_mail_the_latest_sent_to_the_address_is_taken(
        contacts: Store, config: Config) -> None:
    store = contacts
    sent_acknowledgement(store, KELLY, "intake.first@intake.example", sent=T0 - dt.timedelta(minutes=9))
    sent_acknowledgement(store, KELLY, "intake.second@intake.example", sent=T0 - dt.timedelta(minutes=1))
    sent_acknowledgement(store, "zack.morris@bayside.example", "intake.zack@intake.example", sent=T0)

    reason = receive(store, _without_returned_message(fixture(POSTFIX)), config)

    assert reason is not None and reason.startswith(f"bounce of <intake.second@intake.example> to {KELLY}")
    assert contact(store, KELLY).bounces == 1


def test_a_bounce_of_mail_we_never_sent_is_not_counted(contacts: Store, config: Config) -> None:
    store = contacts
    reason = receive(store, fixture(POSTFIX), config)

    assert reason == (f'bounce to {KELLY}: 5.1.1 unknown user: "kelly.kapowski"; no mail of ours to that address '
                      f"found, not counted")
    assert contact(store, KELLY).bounces == 0


# --- not bounces ------------------------------------------------------------------------


def test_ordinary_mail_is_not_a_bounce(contacts: Store, config: Config) -> None:
    assert receive(contacts, compose(f"Kelly <{KELLY}>", "Gradebook export fails", "It fails."), config) is None


def test_a_customer_forwarding_a_bounce_they_got_is_asking_for_support(contacts: Store, config: Config) -> None:
    store = contacts
    sent_acknowledgement(store, SLATER, BOUNCED_ID[QMAIL])
    quoted = fixture(QMAIL).decode().split("\n\n", 1)[1]
    raw = compose(f"Kelly <{KELLY}>", "Fwd: failure notice", f"Why did this bounce?\n\n{quoted}")

    assert receive(store, raw, config) is None
    assert contact(store, SLATER).bounces == 0


def test_a_successful_delivery_report_is_a_report_but_nothing_is_counted(contacts: Store, config: Config) -> None:
    store = contacts
    sent_acknowledgement(store, KELLY, BOUNCED_ID[POSTFIX])
    raw = fixture(POSTFIX).replace(b"Action: failed", b"Action: delivered").replace(b"Status: 5.1.1", b"Status: 2.0.0")

    assert receive(store, raw, config) == "delivery status notification naming no failed recipient; nothing to record"
    assert contact(store, KELLY).bounces == 0
