"""What happens to a case after it is made: comments and its life cycle.

Used by the act stage (a contact's reply becomes a comment) and by the staff
command line. Every function works inside the caller's transaction and queues
the mail it causes in the outbox of that same transaction, so a change and
its mail are committed together or not at all.
"""
from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import inspect
from sqlalchemy.orm import Session

from intake.config import Config
from intake.mailout.compose import compose_case_mail
from intake.mailout.outbox import case_thread, enqueue
from intake.store.database import add_written, change_written
from intake.store.models import Attachment, Case, Comment, utcnow
from parsers.message import Attachment as ParsedAttachment
from routing.states import CaseStatus, Reply


class CaseActionError(ValueError):
    """A staff action that cannot be done as asked; the message says why."""


def notify_case(session: Session, case: Case, kind: Reply, values: dict[str, object], config: Config,
                recipients: Iterable[tuple[str, str]] | None = None) -> None:
    """Mail about a case, on its thread, to its contacts (or to `recipients`), queued in this transaction."""
    to = tuple(recipients) if recipients is not None else tuple(case_recipients(case))
    message = compose_case_mail(kind, case_thread(case), to, values, config)
    enqueue(session, message, kind, [address for _, address in to], case=case)


def case_recipients(case: Case) -> list[tuple[str, str]]:
    """The case's contact and, when someone else filed it, the one who did."""
    seen: dict[str, str] = {}
    for person in (case.contact, case.submitted_by):
        seen.setdefault(person.email, person.full_name)
    return [(name, address) for address, name in seen.items()]


# --- comments ------------------------------------------------------------------------


@dataclass(frozen=True)
class NewAttachment:
    """A file staff attach from the command line; its type is sniffed as mail's are (`parsers.attachments`)."""

    filename: str
    content_type: str
    content: bytes
    sniffed_type: str | None = None
    type_mismatch: bool = False


def attachment_row(attachment: NewAttachment | ParsedAttachment, case_number: int, inbound_id: int | None,
                   comment_id: int | None = None) -> Attachment:
    """The stored row of a file attached to a case (and to one of its comments)."""
    return Attachment(case_number=case_number, inbound_message_id=inbound_id, comment_id=comment_id,
                      filename=attachment.filename, content_type=attachment.content_type,
                      sniffed_type=attachment.sniffed_type, type_mismatch=attachment.type_mismatch,
                      size=len(attachment.content), sha256=hashlib.sha256(attachment.content).hexdigest(),
                      content=attachment.content)


def add_comment(session: Session, case: Case, author: str, body: str, *, public: bool,
                attachments: Sequence[NewAttachment | ParsedAttachment] = (), inbound_id: int | None = None,
                now: dt.datetime | None = None, case_changes: Mapping[str, object] | None = None) -> Comment:
    """The comment and the case's new `modified` time (with ``case_changes``), each written by one plain statement.

    A reply becomes a comment on three messages in ten: the unit of work's
    flush of the two rows cost more than the rest of the comment's work.
    """
    created = now or utcnow()
    comment = add_written(session, Comment, {"case_number": case.number, "author": author, "body": body,
                                             "public": public, "created": created, "inbound_message_id": inbound_id})
    for attachment in attachments:
        session.add(attachment_row(attachment, case.number, inbound_id, comment.id))
    for loaded in ("comments", "attachments"):  # read before in this transaction: read again when next asked for
        if loaded not in inspect(case).unloaded:
            session.expire(case, [loaded])
    change_written(session, case, {"modified": created, **(case_changes or {})})
    return comment


def staff_comment(session: Session, case: Case, author: str, body: str, config: Config, *, public: bool,
                  attachments: Sequence[NewAttachment | ParsedAttachment] = (),
                  inbound_id: int | None = None) -> Comment:
    """A comment from support staff; a public one is mailed to the contact and waits on their answer."""
    waits = public and case.status in (CaseStatus.NEW.value, CaseStatus.OPEN.value)
    comment = add_comment(session, case, author, body, public=public, attachments=attachments, inbound_id=inbound_id,
                          case_changes={"status": CaseStatus.WAITING_ON_CONTACT.value} if waits else None)
    if public:
        notify_case(session, case, Reply.COMMENT, {"author": config.organisation, "body": body,
                                                  "attachments": [a.filename for a in attachments]}, config)
    return comment


def contact_comment(session: Session, case: Case, author: str, body: str,
                    attachments: Sequence[ParsedAttachment], inbound_id: int, reopens: bool) -> Comment:
    """A contact's reply: the case is theirs to answer no longer, and a resolved or closed case reopens."""
    opens = reopens or case.status in (CaseStatus.NEW.value, CaseStatus.WAITING_ON_CONTACT.value)
    return add_comment(session, case, author, body, public=True, attachments=attachments, inbound_id=inbound_id,
                       case_changes={"status": CaseStatus.OPEN.value, "closed": None} if opens else None)


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


