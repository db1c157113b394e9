"""Helpers for the notification tests: notice mail as the relay got it, extra contacts, the database."""
from __future__ import annotations

import collections
import email
from collections.abc import Iterable
from email import policy as email_policy
from email.message import EmailMessage
from pathlib import Path

from sqlalchemy import update

from conftest import Intake, compose
from intake.config import load_config
from intake.store.database import Store, open_store
from intake.store.models import Contact

HEADER = ("account,email,first_name,last_name,title,primary_phone,secondary_phone,contact_type,areas,"
          "schema_bootcamp,active")
BAYSIDE = "Bayside School (TESTING)"
VALLEY = "Valley High District"
# The contacts of tests/data/contacts.csv who get Bayside's notices: active Authorized and Technical ones.
BAYSIDE_NOTIFIED = {"zack.morris@bayside.example", "kelly.kapowski@bayside.example", "ac.slater@bayside.example",
                    "richard.belding@bayside.example"}
VALLEY_NOTIFIED = {"richard.belding@bayside.example", "jessie.spano@valley.example"}
READ_ONLY = "screech.powers@bayside.example"
INACTIVE = "lisa.turtle@bayside.example"


def add_contacts(intake: Intake, *rows: str) -> None:
    """Import CSV rows (in tests/data/contacts.csv's columns) beside the test contacts."""
    path = intake.root / f"extra-{len(list(intake.root.glob('extra-*.csv')))}.csv"
    path.write_text("\n".join([HEADER, *rows]) + "\n", encoding="utf-8")
    ran = intake.run("contacts", "import", str(path))
    assert ran.code == 0 and "0 row(s) rejected" in ran.out, ran.out + ran.err


def configure(intake: Intake, settings: str) -> None:
    """Append a [notifications] table to the configuration."""
    with intake.config.open("a", encoding="utf-8") as handle:
        handle.write("[notifications]\n" + settings + "\n")


def store_of(intake: Intake) -> Store:
    return open_store(load_config(intake.config).database_url)


def set_bouncing(intake: Intake, address: str) -> None:
    store = store_of(intake)
    with store.session() as session, session.begin():
        session.execute(update(Contact).where(Contact.email == address).values(bouncing=True, bounces=3))
    store.engine.dispose()


def notice_mail(intake: Intake) -> list[EmailMessage]:
    """Every notice message the relay received, oldest first."""
    return [m for m in intake.sent_mail() if m["List-Id"] is not None]


def recipients(messages: Iterable[EmailMessage]) -> collections.Counter[str]:
    """How many messages each address got (each message has exactly one recipient)."""
    counted: collections.Counter[str] = collections.Counter()
    for message in messages:
        to = message["To"].addresses
        assert len(to) == 1, f"one recipient per message, not {message['To']}"
        counted[to[0].addr_spec] += 1
    return counted


def text_of(message: EmailMessage) -> str:
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    return str(body.get_content())


def reply_to(message: EmailMessage, sender: str, body: str, **headers: str) -> bytes:
    """A contact's reply to a message intake sent."""
    return compose(sender, f"Re: {message['Subject']}", body, headers={
        "In-Reply-To": message["Message-ID"], "References": message["Message-ID"], **headers})


def parsed(raw: bytes) -> EmailMessage:
    message = email.message_from_bytes(raw, policy=email_policy.default)
    assert isinstance(message, EmailMessage)
    return message


def data(path: Path) -> str:
    return path.read_text(encoding="utf-8")
