"""What happens to a case after it is made: comments, life cycle, approvals, notices.

Used by the worker (a contact's reply becomes a comment) and by the staff
command line. Every function works inside the caller's transaction and queues
the mail it causes in the outbox of that same transaction, so a change and
its notice are committed together or not at all.
"""
from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Iterable, Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from intake.config import Config
from intake.store.models import (Account, Attachment, Case, CaseStatus, Comment, Contact, InboundMessage, OutboundMessage,
                           utcnow)
from intake.mailout.compose import Envelope, render
from parsers.message import Attachment as ParsedAttachment
from routing.outcomes import Reply
from routing.schema import ContactType

STATUS_CLOSED_DAYS = 90
# Replies made by a robot; the per-sender cap counts only these, never staff mail.
AUTOMATIC_KINDS = frozenset({Reply.ACKNOWLEDGEMENT.value, Reply.NEEDS_INFORMATION.value, Reply.REFUSAL.value,
                             Reply.TEMPLATE.value, Reply.STATUS.value})


class CaseActionError(ValueError):
    """A staff action that cannot be done as asked; the message says why."""


# --- the outbox -------------------------------------------------------------------


def queue_mail(session: Session, message: EmailMessage, kind: Reply, recipients: Sequence[str], *,
               case_number: int | None = None, inbound_id: int | None = None) -> OutboundMessage:
    row = OutboundMessage(message_id=str(message["Message-ID"]).strip().strip("<>"),
                          in_reply_to=str(message["In-Reply-To"]).strip().strip("<>") if message["In-Reply-To"]
                          else None,
                          kind=kind.value, recipients=list(recipients), subject=str(message["Subject"]),
                          raw=message.as_bytes(), status="queued", case_number=case_number,
                          inbound_message_id=inbound_id)
    session.add(row)
    return row


def over_reply_cap(session: Session, address: str, config: Config, now: dt.datetime) -> bool:
    """Whether `address` already had the configured number of automatic replies in the last hour."""
    sent = session.scalar(
        select(func.count()).select_from(OutboundMessage)
        .join(InboundMessage, OutboundMessage.inbound_message_id == InboundMessage.id)
        .where(InboundMessage.sender == address, OutboundMessage.created >= now - dt.timedelta(hours=1),
               OutboundMessage.kind.in_(AUTOMATIC_KINDS)))
    return (sent or 0) >= config.conversations.auto_replies_per_hour


def thread_of(case: Case) -> tuple[str | None, tuple[str, ...]]:
    """(In-Reply-To, References) for a new message on the case's thread: the latest message, and all before."""
    timed = [(m.received, m.message_id) for m in case.inbound_messages if m.message_id]
    timed += [(m.created, m.message_id) for m in case.outbound_messages]
    ids = [message_id for _, message_id in sorted(timed, key=lambda pair: pair[0])]
    return (ids[-1] if ids else None), tuple(ids[-20:])


def _case_recipients(case: Case) -> list[tuple[str, str]]:
    people = [case.contact, case.submitted_by]
    seen: dict[str, str] = {}
    for person in people:
        seen.setdefault(person.email, person.full_name)
    return [(name, address) for address, name in seen.items()]


def notify_case(session: Session, case: Case, kind: Reply, values: dict[str, object], config: Config,
                recipients: Iterable[tuple[str, str]] | None = None) -> OutboundMessage:
    """Mail about a case, on its thread, to its contacts (or to `recipients`)."""
    to = tuple(recipients) if recipients is not None else tuple(_case_recipients(case))
    in_reply_to, references = thread_of(case)
    envelope = Envelope(to=to, subject=f"[Case #{case.number}] {case.subject}", case_number=case.number,
                        in_reply_to=in_reply_to, references=references, auto_submitted="auto-generated")
    values = {"to_name": to[0][0] if len(to) == 1 else "", "automatic": False, "case_number": case.number,
              "case_subject": case.subject, **values}
    message = render(kind, values, envelope, config)
    row = queue_mail(session, message, kind, [address for _, address in to], case_number=case.number)
    session.flush()
    case.outbound_messages.append(row)
    return row


# --- comments ------------------------------------------------------------------------


@dataclass(frozen=True)
class NewAttachment:
    filename: str
    content_type: str
    content: bytes


def add_comment(session: Session, case: Case, author: str, body: str, *, public: bool,
                attachments: Sequence[NewAttachment | ParsedAttachment] = (), inbound_id: int | None = None,
                now: dt.datetime | None = None) -> Comment:
    comment = Comment(case_number=case.number, author=author, body=body, public=public, created=now or utcnow(),
                      inbound_message_id=inbound_id)
    session.add(comment)
    session.flush()
    for attachment in attachments:
        session.add(Attachment(case_number=case.number, inbound_message_id=inbound_id, comment_id=comment.id,
                               filename=attachment.filename, content_type=attachment.content_type,
                               size=len(attachment.content), sha256=hashlib.sha256(attachment.content).hexdigest(),
                               content=attachment.content))
    case.modified = comment.created
    session.flush()
    return comment


def staff_comment(session: Session, case: Case, author: str, body: str, config: Config, *, public: bool,
                  attachments: Sequence[NewAttachment | ParsedAttachment] = (),
                  inbound_id: int | None = None) -> Comment:
    """A comment from support staff; a public one is mailed to the contact and waits on their answer."""
    comment = add_comment(session, case, author, body, public=public, attachments=attachments, inbound_id=inbound_id)
    if public:
        notify_case(session, case, Reply.COMMENT, {"author": config.organisation, "body": body,
                                                  "attachments": [a.filename for a in attachments]}, config)
        if case.status in (CaseStatus.NEW.value, CaseStatus.OPEN.value):
            case.status = CaseStatus.WAITING_ON_CONTACT.value
    return comment


def contact_comment(session: Session, case: Case, author: str, body: str,
                    attachments: Sequence[ParsedAttachment], inbound_id: int, reopens: bool) -> Comment:
    """A contact's reply: the case is theirs to answer no longer, and a resolved or closed case reopens."""
    comment = add_comment(session, case, author, body, public=True, attachments=attachments, inbound_id=inbound_id)
    if reopens or case.status in (CaseStatus.NEW.value, CaseStatus.WAITING_ON_CONTACT.value):
        case.status = CaseStatus.OPEN.value
        case.closed = None
    return comment


# --- life cycle ------------------------------------------------------------------------


def resolve(session: Session, case: Case, resolution: str, config: Config) -> None:
    if case.status == CaseStatus.CLOSED.value:
        raise CaseActionError(f"case #{case.number} is closed; reopen it first")
    if not resolution.strip():
        raise CaseActionError("the resolution must say how the case was resolved")
    case.status = CaseStatus.RESOLVED.value
    case.resolution = resolution.strip()
    case.resolved = utcnow()
    notify_case(session, case, Reply.RESOLUTION, {"resolution": case.resolution,
                                                  "reopen_days": config.conversations.reopen_window_days}, config)


def close(case: Case) -> None:
    if case.status == CaseStatus.CLOSED.value:
        raise CaseActionError(f"case #{case.number} is already closed")
    case.status = CaseStatus.CLOSED.value
    case.closed = utcnow()


def reopen(case: Case) -> None:
    if case.status not in (CaseStatus.RESOLVED.value, CaseStatus.CLOSED.value):
        raise CaseActionError(f"case #{case.number} is {case.status}, not resolved or closed")
    case.status = CaseStatus.OPEN.value
    case.closed = None


# --- Modify Support Contacts -----------------------------------------------------------


def approve_contact_change(session: Session, case: Case, approved_by: str, config: Config) -> list[str]:
    """Apply an approved Modify Support Contacts case to the registry; returns what changed."""
    if case.case_type != "Modify Support Contacts":
        raise CaseActionError(f"case #{case.number} is {case.case_type}; only Modify Support Contacts cases "
                              f"are approved")
    if case.approved is not None:
        raise CaseActionError(f"case #{case.number} was already approved by {case.approved_by}")
    fields = case.fields
    request = fields.get("Request Type")
    apply = {"Add": _add_contact, "Modify": _modify_contact, "Replace": _replace_contact,
             "Remove": _remove_contact}.get(str(request))
    if apply is None:
        raise CaseActionError(f"case #{case.number} has no Request Type to apply")
    changes, told = apply(session, case, fields)
    case.approved_by, case.approved = approved_by, utcnow()
    add_comment(session, case, approved_by, "Approved. " + " ".join(changes), public=False)
    values = {"request_type": request, "approved_by": approved_by, "details": changes}
    notify_case(session, case, Reply.CONTACT_CHANGE,
                {**values, "message": "Your request to change your district's support contacts has been applied."},
                config)
    for contact, message in told:
        notify_case(session, case, Reply.CONTACT_CHANGE, {**values, "message": message}, config,
                    recipients=[(contact.full_name, contact.email)])
    return changes


def _contact_in(case: Case, written: str | None) -> Contact:
    wanted = (written or "").strip().lower()
    for contact in case.account.contacts:
        if wanted in (contact.email, contact.full_name.lower()):
            return contact
    raise CaseActionError(f"'{written}' is not a contact of {case.account.name}")


def _set_details(contact: Contact, fields: dict[str, object]) -> None:
    for label, attribute in (("Contact First Name", "first_name"), ("Contact Last Name", "last_name"),
                             ("Contact Title", "title"), ("Contact Primary Phone", "primary_phone"),
                             ("Contact Secondary Phone", "secondary_phone"), ("Contact Type", "contact_type"),
                             ("Area of Responsibility", "areas")):
        if fields.get(label):
            setattr(contact, attribute, fields[label])


def _add_contact(session: Session, case: Case, fields: dict[str, object]) -> tuple[list[str], list]:
    email = str(fields["Contact Email"]).lower()
    contact = session.scalars(select(Contact).where(Contact.email == email)).first()
    if contact is None:
        contact = Contact(email=email, contact_type=str(fields.get("Contact Type") or ContactType.READ_ONLY.value),
                          areas=[])
        session.add(contact)
    _set_details(contact, fields)
    contact.active = True
    if case.account not in contact.accounts:
        contact.accounts.append(case.account)
    session.flush()
    added = f"Added {contact.full_name} <{email}> as a {contact.contact_type} contact of {case.account.name}."
    return [added], [(contact, f"You have been added as a {contact.contact_type} support contact of "
                               f"{case.account.name}.")]


def _modify_contact(session: Session, case: Case, fields: dict[str, object]) -> tuple[list[str], list]:
    contact = _contact_in(case, str(fields.get("Contact Email") or ""))
    _set_details(contact, fields)
    return [f"Updated {contact.full_name} <{contact.email}>."], []


def _detach(contact: Contact, account: Account) -> str:
    contact.accounts.remove(account)
    if not contact.accounts:
        contact.active = False
    return f"Removed {contact.full_name} <{contact.email}> from the contacts of {account.name}."


def _replace_contact(session: Session, case: Case, fields: dict[str, object]) -> tuple[list[str], list]:
    old = _contact_in(case, str(fields.get("Contact Replacement Name") or ""))
    added, told = _add_contact(session, case, fields)
    removed = _detach(old, case.account)
    return added + [removed], told + [(old, f"You are no longer a support contact of {case.account.name}; "
                                            f"{fields.get('Contact First Name')} {fields.get('Contact Last Name')} "
                                            f"replaces you.")]


def _remove_contact(session: Session, case: Case, fields: dict[str, object]) -> tuple[list[str], list]:
    contact = _contact_in(case, str(fields.get("Contact Email") or ""))
    account = case.account
    return [_detach(contact, account)], [(contact, f"You are no longer a support contact of {account.name}.")]


# --- status by email -----------------------------------------------------------------


def status_values(session: Session, email: str, config: Config, now: dt.datetime) -> dict[str, object]:
    """The cases of a contact (theirs or sent by them): open ones, and those closed in the last 90 days."""
    contact = session.scalars(select(Contact).where(Contact.email == email)).one()
    mine = session.scalars(select(Case).where((Case.contact_id == contact.id) | (Case.submitted_by_id == contact.id))
                           .order_by(Case.number)).all()
    since = now - dt.timedelta(days=STATUS_CLOSED_DAYS)
    local = config.timezone

    def when(moment: dt.datetime | None) -> str:
        return moment.astimezone(local).strftime("%m/%d/%Y") if moment else ""

    open_cases = [{"number": c.number, "status": c.status, "priority": c.priority, "subject": c.subject,
                   "case_type": c.case_type, "account": c.account.name, "last_activity": when(c.modified)}
                  for c in mine if c.status != CaseStatus.CLOSED.value]
    closed_cases = [{"number": c.number, "subject": c.subject, "closed": when(c.closed)}
                    for c in mine if c.status == CaseStatus.CLOSED.value and c.closed and c.closed >= since]
    return {"open_cases": open_cases, "closed_cases": closed_cases, "closed_days": STATUS_CLOSED_DAYS}

