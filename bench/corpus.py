"""A realistic corpus of support mail for the benchmark, made fresh for each run.

The mix is what a district support address receives: new cases written in the
template for all ten case types (complete, so each one makes a case and an
acknowledgement), replies on earlier cases from several mail clients with their
quoted history, attachments, non-ASCII names, subjects and text, and HTML-only
mail. Everything is generated from a seed, so two runs measure the same mail;
the contacts CSV names every sender, so nothing is refused as a stranger.
"""
from __future__ import annotations

import csv
import datetime as dt
import mailbox
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime, formataddr
from pathlib import Path

from routing.schema import CaseType

SUPPORT = "support@intake.example"
# Header lines are not folded: intake 0.1.0 refuses a From header folded across lines as ambiguous (reported on
# issue 12), and the benchmark measures the usual path, not that refusal.
POLICY = policy.default.clone(max_line_length=998)
CSV_COLUMNS = ("account", "email", "first_name", "last_name", "title", "primary_phone", "secondary_phone",
               "contact_type", "areas", "schema_bootcamp", "active")

# Names with and without accents and other scripts, so non-ASCII headers and text are common.
FIRST_NAMES = ("Zack", "Kelly", "José", "Zoë", "Søren", "Anaïs", "Jürgen", "Li", "Małgorzata", "Dmitri",
               "Aoife", "Nguyễn", "Fatima", "Björk", "Chidi", "Renée", "Ólafur", "Priya", "Hiroshi", "Élodie")
LAST_NAMES = ("Morris", "Kapowski", "Núñez", "Ødegård", "Müller", "Wang", "Kowalska", "Ivanov", "O'Brien", "Trần",
              "Haddad", "Guðmundsdóttir", "Okafor", "Lefèvre", "Sharma", "Tanaka", "García", "Smith", "Dubois", "Ali")
DISTRICTS = ("Bayside", "Valley High", "Riverside", "Cedar Falls", "Lakeview", "Montaña Verde", "Pine Ridge",
             "Sankt Georgen", "North Shore", "Eastwood", "Fairmont", "Glenbrook", "Harbor City", "Ironwood",
             "Juniper", "Kingsport", "Linden", "Maple Grove", "Northfield", "Oakmont")
ACCOUNT_COUNT = 20
CONTACTS_PER_ACCOUNT = 10
MODULES = ("Grade Book", "Attendance", "Census", "Scheduling", "Food Service", "Fees", "Health", "Transcripts",
           "Campus Parent", "State Reporting", "Behavior", "Reports")


@dataclass(frozen=True)
class ContactRow:
    account: str
    email: str
    first_name: str
    last_name: str
    title: str
    contact_type: str
    areas: str
    schema_bootcamp: str

    @property
    def name(self) -> str:
        return f"{self.first_name} {self.last_name}"


@dataclass(frozen=True)
class CorpusMessage:
    """One generated message and what it is meant to exercise."""

    kind: str               # "new_case", "reply", "html_only"
    case_type: str | None   # the case type a new case is written in
    message_id: str
    sender: str
    raw: bytes              # LF line endings, as in an mbox; sent over SMTP with CRLF


@dataclass(frozen=True)
class Corpus:
    contacts: list[ContactRow]
    messages: list[CorpusMessage]


def make_contacts() -> list[ContactRow]:
    """Twenty districts of ten contacts each, mostly Authorized, some Technical, all active."""
    rows = []
    for a in range(ACCOUNT_COUNT):
        district = DISTRICTS[a % len(DISTRICTS)]
        domain = f"d{a:02d}.{district.lower().replace(' ', '-').replace('ñ', 'n')}.example"
        for c in range(CONTACTS_PER_ACCOUNT):
            first = FIRST_NAMES[(a + c) % len(FIRST_NAMES)]
            last = LAST_NAMES[(a * 3 + c) % len(LAST_NAMES)]
            rows.append(ContactRow(
                account=f"{district} School District {a:02d}", email=f"contact{c:02d}@{domain}",
                first_name=first, last_name=last, title="Technology Coordinator" if c % 2 else "Registrar",
                contact_type="Technical" if c % 5 == 4 else "Authorized", areas="SIS;Finance",
                schema_bootcamp="2024-06-01" if c % 3 == 0 else ""))
    return rows


def write_contacts_csv(path: Path, contacts: Iterable[ContactRow]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(CSV_COLUMNS)
        for c in contacts:
            writer.writerow((c.account, c.email, c.first_name, c.last_name, c.title, "555-201-0100", "",
                             c.contact_type, c.areas, c.schema_bootcamp, "yes"))


# --- the template bodies of the ten case types -----------------------------------------------------------


def _day(today: dt.date, days: int) -> str:
    return (today + dt.timedelta(days=days)).strftime("%m/%d/%Y")


def _bodies(today: dt.date, rng: random.Random) -> dict[CaseType, Callable[[ContactRow], tuple[str, str]]]:
    """For each case type, (subject, template body) written by a contact; every required field is given."""
    module = rng.choice(MODULES)
    return {
        CaseType.APPLICATION_ISSUE: lambda c: (
            f"[Application Issue] Teachers unable to post grades in {module}",
            f"Module: {module}\nDescription: None of the teachers at Campus High School are able to post grades.\n"
            "When they click Post in their grade books it is greyed out — only for this course.\n"
            "Steps to Reproduce:\n1. Log in as teacher Anne Shirley\n2. Go to Grade Book for 1100-1\n"
            "3. Select Q1 and click Post\nEnvironment Changes: None\nWho is impacted? English Lit teachers\n"
            f"Issue Began: {_day(today, -3)}\nError Message:\nExpected Results: Post button to be active\n"),
        CaseType.ASK_A_QUESTION: lambda c: (
            "[Ask a Question] Where do I find the household report?",
            "Module: Census\nLocation within Product: Census > Reports\n"
            "Description: I need a list of every household with more than one enrolled student for our\n"
            "back-to-school mailing (« rentrée »). Which report gives me that, and can it be limited to one school?\n"),
        CaseType.REPORT_AN_OUTAGE: lambda c: (
            "[Report an Outage] Campus is down for everyone",
            "Priority: Critical\nDescription: Nobody at the district office can log in since 7:40 this morning.\n"
            "Error Message: 503 Service Unavailable\n"),
        CaseType.REQUEST_TRAINING: lambda c: (
            "[Request Training] Grade Book training for new teachers",
            "Request Type: Campus Learning training for teachers\n"
            f"Preferred Training Date: {_day(today, 21)}\nPreferred Training Date 2: {_day(today, 28)}\n"
            "Description: Twelve new teachers start in January and need an afternoon on the Grade Book.\n"),
        CaseType.DATA_RESTORE: lambda c: (
            "[Data Restore] Attendance for Friday was deleted",
            f"Module: Attendance\nApproximate Date of Loss: {_day(today, -2)}\n"
            "Reason for Restore: A clerk ran the wrong mass-delete tool on Friday's attendance.\n"
            "Written Permission: Yes, I give permission to restore this data\n"
            "Description: Please restore Friday's attendance for all schools.\n"),
        CaseType.SERVER_ISSUE: lambda c: (
            "[Server Issue] Nightly job fails on the app server",
            "Module: Reports\nError Message: java.lang.OutOfMemoryError: Java heap space\n"
            f"Issue Began: {_day(today, -1)}\n"
            "Description: The nightly extract stops after an hour; the server was patched on Sunday.\n"),
        CaseType.SERVER_ACCESS: lambda c: (
            "[Server Access] SSRS access for our report writer",
            "Request Type: SSRS\nDescription: Our new report writer needs SSRS access to build the state reports.\n"),
        CaseType.MODIFY_SUPPORT_CONTACTS: lambda c: (
            "[Modify Support Contacts] Please add our new registrar",
            "Request Type: Add\nContact First Name: Renée\nContact Last Name: Lefèvre\n"
            f"Contact Email: new.registrar.{rng.randrange(10**6)}@{c.email.partition('@')[2]}\n"
            "Contact Title: Registrar\nContact Primary Phone: 555-201-0199\nContact Type: Technical\n"
            "Area of Responsibility: SIS, State Edition\nDescription: She starts on Monday.\n"),
        CaseType.REQUEST_CONSULTING: lambda c: (
            "[Request Consulting] Scheduling consult before the new term",
            f"Preferred Consult Date: {_day(today, 30)}\nPreferred Consult Date 2: {_day(today, 35)}\n"
            "Description: We would like a consultant to review our master schedule setup.\n"),
        CaseType.REQUEST_TECHNICAL_SERVICES: lambda c: (
            "[Request Technical Services] Custom report card for grades K-2",
            f"Type: Custom Report Card\nModule: Grading and Standards\nDesired Completion Date: {_day(today, 60)}\n"
            "Description: Our K-2 report card needs standards-based marks and a bilingual (English/Español) layout.\n"),
    }


SIGNATURES = ("Thanks,\n{first}", "Best regards,\n{name}\n{title} | {account}", "Merci,\n{first}",
              "Mit freundlichen Grüßen\n{name}", "-- \n{name}\n{title}\nPhone 555-201-0100")


# --- quoted history as different mail clients write it -----------------------------------------------------

def _quote_gmail(text: str, when: str, who: str) -> str:
    return f"On {when}, {who} wrote:\n" + "".join(f"> {line}\n" for line in text.splitlines())


def _quote_outlook(text: str, when: str, who: str) -> str:
    return (f"\n________________________________\nFrom: {who}\nSent: {when}\nTo: Support <{SUPPORT}>\n"
            f"Subject: your request\n\n{text}\n")


def _quote_outlook_german(text: str, when: str, who: str) -> str:
    return f"\nVon: {who}\nGesendet: {when}\nAn: Support <{SUPPORT}>\nBetreff: Ihre Anfrage\n\n{text}\n"


def _quote_apple_french(text: str, when: str, who: str) -> str:
    return f"\n> Le {when}, {who} a écrit :\n>\n" + "".join(f"> {line}\n" for line in text.splitlines())


def _quote_thunderbird(text: str, when: str, who: str) -> str:
    return f"\nOn {when}, {who} wrote:\n" + "".join(f">{line}\n" for line in text.splitlines())


QUOTERS = (("Gmail", _quote_gmail), ("Microsoft Outlook 16.0", _quote_outlook),
           ("Microsoft Outlook 16.0 (de)", _quote_outlook_german), ("Apple Mail (2.3696)", _quote_apple_french),
           ("Mozilla Thunderbird 115", _quote_thunderbird))
REPLY_TEXTS = ("The button is still greyed out after clearing the cache. Screenshot attached.",
               "Ça marche maintenant, merci ! You can close the case.",
               "Es funktioniert leider immer noch nicht — gleiche Fehlermeldung wie gestern.",
               "We tried again this morning; the report runs but the totals are off by one school.",
               "Here is the export you asked for. Let me know if you need anything else.")


# --- building messages --------------------------------------------------------------------------------------

class _Builder:
    def __init__(self, seed: int, today: dt.date) -> None:
        self.rng = random.Random(seed)
        self.today = today
        self.bodies = _bodies(today, self.rng)
        self.when = dt.datetime.combine(today, dt.time(8, 0), tzinfo=dt.UTC)
        self.sent: list[tuple[str, str, str, ContactRow]] = []  # (message_id, subject, text, contact) of new cases

    def headers(self, msg: EmailMessage, contact: ContactRow, subject: str, number: int, mailer: str) -> str:
        self.when += dt.timedelta(seconds=self.rng.randrange(5, 90))
        message_id = f"<bench-{number:06d}.{self.rng.randrange(16**8):08x}@{contact.email.partition('@')[2]}>"
        msg["From"] = formataddr((contact.name, contact.email))
        msg["To"] = formataddr(("District Support", SUPPORT))
        msg["Subject"] = subject
        msg["Date"] = format_datetime(self.when)
        msg["Message-ID"] = message_id
        msg["X-Mailer"] = mailer
        return message_id

    def signature(self, contact: ContactRow) -> str:
        return self.rng.choice(SIGNATURES).format(first=contact.first_name, name=contact.name, title=contact.title,
                                                  account=contact.account)

    def attach(self, msg: EmailMessage) -> None:
        kind = self.rng.choice((("image", "png", "screenshot.png"), ("application", "pdf", "Bericht_März.pdf"),
                                ("text", "csv", "export.csv")))
        size = self.rng.choice((2_000, 20_000, 120_000))
        content = self.rng.randbytes(size)
        if kind[0] == "text":
            msg.add_attachment(content.hex()[:size], subtype=kind[1], filename=kind[2])
        else:
            msg.add_attachment(content, maintype=kind[0], subtype=kind[1], filename=kind[2])

    def new_case(self, number: int, contact: ContactRow, case_type: CaseType, html_only: bool) -> CorpusMessage:
        subject, body = self.bodies[case_type](contact)
        text = f"{body}\n{self.signature(contact)}\n"
        msg = EmailMessage(policy=POLICY)
        mailer = "Outlook Web App" if html_only else self.rng.choice(QUOTERS)[0]
        message_id = self.headers(msg, contact, subject, number, mailer)
        if html_only:
            html = "".join(f"<p>{line}</p>\n" if line else "<br>\n" for line in text.splitlines())
            msg.set_content(f"<html><body>\n{html}</body></html>\n", subtype="html", cte="quoted-printable")
        else:
            msg.set_content(text, cte=self.rng.choice(("8bit", "quoted-printable")))
        if self.rng.random() < 0.15:
            self.attach(msg)
        self.sent.append((message_id, subject, text, contact))
        return CorpusMessage("html_only" if html_only else "new_case", case_type.value, message_id, contact.email,
                             bytes(msg))

    def reply(self, number: int, contacts: list[ContactRow]) -> CorpusMessage:
        parent_id, parent_subject, parent_text, parent_contact = self.rng.choice(self.sent[-200:])
        # A colleague of the same district, or the same contact, answers on the thread.
        contact = self.rng.choice([c for c in contacts if c.account == parent_contact.account])
        mailer, quote = self.rng.choice(QUOTERS)
        prefix = "AW: " if "(de)" in mailer else "RE: " if "Outlook" in mailer else "Re: "
        msg = EmailMessage(policy=POLICY)
        message_id = self.headers(msg, contact, prefix + parent_subject, number, mailer)
        msg["In-Reply-To"] = parent_id
        msg["References"] = parent_id
        who = formataddr((parent_contact.name, parent_contact.email))
        text = (f"{self.rng.choice(REPLY_TEXTS)}\n\n{self.signature(contact)}\n"
                + quote(parent_text, format_datetime(self.when - dt.timedelta(hours=2)), who))
        msg.set_content(text, cte="quoted-printable")
        if self.rng.random() < 0.2:
            self.attach(msg)
        return CorpusMessage("reply", None, message_id, contact.email, bytes(msg))


def make_corpus(count: int, seed: int = 12, today: dt.date | None = None) -> Corpus:
    """`count` messages: in every ten, six new cases (the ten types in turn), one HTML-only new case, three replies."""
    contacts = make_contacts()
    builder = _Builder(seed, today or dt.date.today())
    types = list(CaseType)
    messages = []
    for number in range(count):
        slot = number % 10
        contact = contacts[(number * 7) % len(contacts)]
        if slot in (3, 6, 9) and builder.sent:
            messages.append(builder.reply(number, contacts))
        else:
            case_type = types[len(builder.sent) % len(types)]
            if case_type in (CaseType.SERVER_ACCESS, CaseType.MODIFY_SUPPORT_CONTACTS, CaseType.REQUEST_CONSULTING,
                             CaseType.REQUEST_TECHNICAL_SERVICES) and contact.contact_type != "Authorized":
                contact = contacts[(number * 7 + 1) % len(contacts)]  # only Authorized contacts may file these
            messages.append(builder.new_case(number, contact, case_type, html_only=slot == 8))
    return Corpus(contacts, messages)


def write_mbox(path: Path, messages: Iterable[CorpusMessage]) -> None:
    box = mailbox.mbox(str(path), create=True)
    box.lock()
    try:
        for m in messages:
            box.add(m.raw)
    finally:
        box.flush()
        box.unlock()
        box.close()


def big_attachment_message(contact: ContactRow, size: int, number: int = 999_999) -> bytes:
    """One new case with an attachment of `size` bytes (base64: about 1.35 times as many on the wire)."""
    builder = _Builder(number, dt.date.today())
    subject, body = builder.bodies[CaseType.APPLICATION_ISSUE](contact)
    msg = EmailMessage(policy=POLICY)
    builder.headers(msg, contact, subject, number, "Microsoft Outlook 16.0")
    msg.set_content(f"{body}\nThe full export is attached.\n\nThanks,\n{contact.first_name}\n")
    msg.add_attachment(random.Random(number).randbytes(size), maintype="application", subtype="zip",
                       filename="full-export.zip")
    return bytes(msg)
